import RunlogJSON
import Foundation
import WorkflowModel
import Workflows

/// The file of a `multipart/form-data` upload (RFC 7578, what `curl -F file=@rows.csv` and browser
/// forms send), read as the body streams in: only the file part's bytes come out, chunk by chunk,
/// so an upload of any size is never held in memory (at most a delimiter's length, or a part's
/// headers up to 16 KiB, is kept between chunks). A delimiter split over chunks is found all the same.
///
/// Written here because Hummingbird's core package has no multipart parser and no package Runlog
/// already uses has one (a multipart package would be a new dependency). It does only what an
/// upload needs: one file part, named `file` or the only part with a filename; other
/// parts, several files or none are refused with the rule.
struct MultipartFileReader {
    /// Part headers larger than this are refused (a part's headers are a few lines).
    static let maxHeaderBytes = 16 * 1024
    /// Transport padding allowed after a delimiter (RFC 2046: spaces and tabs).
    static let maxPadding = 256

    private enum State { case preamble, afterDelimiter, headers, file, epilogue }

    /// CRLF, `--` and the boundary: what ends a part (the first one may be at the very start).
    let delimiter: [UInt8]
    let boundary: String
    private var state = State.preamble
    /// Bytes kept from the last chunk: a possible start of the delimiter, or unfinished headers.
    /// It starts as a CRLF, so a delimiter at the very start of the body is found like any other.
    private var carry: [UInt8] = [0x0D, 0x0A]
    /// The file part was found (and, once `state` is past it, read whole).
    private(set) var filePart: (name: String?, filename: String?)?

    init(boundary: String) {
        self.boundary = boundary
        delimiter = Array("\r\n--\(boundary)".utf8)
    }

    /// The boundary of a `multipart/form-data` Content-Type, nil for any other type; throws when
    /// the type is multipart but not usable (another subtype, no boundary).
    static func boundary(contentType: String?) throws(MultipartError) -> String? {
        guard let contentType else { return nil }
        let parts = Self.parameters(contentType)
        let type = parts.first?.value.lowercased() ?? ""
        guard type.hasPrefix("multipart/") else { return nil }
        guard type == "multipart/form-data" else {
            throw MultipartError(unsupported: "Content-Type", value: contentType,
                                 "must be multipart/form-data (or text/csv with the file as the body)")
        }
        guard let boundary = parts.dropFirst().first(where: { $0.name == "boundary" })?.value,
              (1...70).contains(boundary.utf8.count) else {
            throw MultipartError(malformed: "Content-Type", value: contentType,
                                 "multipart/form-data needs a boundary parameter of 1 to 70 characters")
        }
        return boundary
    }

    /// The file bytes in `chunk` (possibly none).
    mutating func feed(_ chunk: [UInt8]) throws(MultipartError) -> [UInt8] {
        if state == .epilogue { return [] }
        let buffer = carry.isEmpty ? chunk : carry + chunk
        carry = []
        var out: [UInt8] = []
        var i = 0
        while true {
            switch state {
            case .preamble, .file:
                if let match = Self.find(delimiter, in: buffer, from: i) {
                    if state == .file { out.append(contentsOf: buffer[i..<match]) }
                    i = match + delimiter.count
                    state = .afterDelimiter
                } else {
                    // The last bytes may be the start of a delimiter: keep them for the next chunk.
                    let keep = max(i, buffer.count - (delimiter.count - 1))
                    if state == .file { out.append(contentsOf: buffer[i..<keep]) }
                    carry = Array(buffer[keep...])
                    return out
                }
            case .afterDelimiter:
                var j = i
                while j < buffer.count, buffer[j] == 0x20 || buffer[j] == 0x09 { j += 1 }
                if j - i > Self.maxPadding {
                    throw MultipartError(malformed: "body", value: nil, "a boundary line goes on after the boundary")
                }
                guard j + 1 < buffer.count else {
                    carry = Array(buffer[i...])
                    return out
                }
                if j == i, buffer[j] == 0x2D, buffer[j + 1] == 0x2D {
                    // The close delimiter: what follows is the epilogue, ignored.
                    state = .epilogue
                    guard filePart != nil else {
                        throw MultipartError(rule: "file", value: nil,
                                             "no file part: send the CSV file as the part named file "
                                             + "(curl -F file=@rows.csv)")
                    }
                    return out
                }
                guard buffer[j] == 0x0D, buffer[j + 1] == 0x0A else {
                    throw MultipartError(malformed: "body", value: nil,
                                         "a boundary line must end with CRLF (or -- for the last one)")
                }
                i = j + 2
                state = .headers
            case .headers:
                if buffer.count - i >= 2, buffer[i] == 0x0D, buffer[i + 1] == 0x0A {
                    try startPart(headers: [])  // a part without headers
                    i += 2
                    continue
                }
                guard let end = Self.find([0x0D, 0x0A, 0x0D, 0x0A], in: buffer, from: i) else {
                    if buffer.count - i > Self.maxHeaderBytes {
                        throw MultipartError(malformed: "body", value: nil,
                                             "a part's headers are larger than \(Self.maxHeaderBytes / 1024) KiB")
                    }
                    carry = Array(buffer[i...])
                    return out
                }
                if end - i > Self.maxHeaderBytes {
                    throw MultipartError(malformed: "body", value: nil,
                                         "a part's headers are larger than \(Self.maxHeaderBytes / 1024) KiB")
                }
                try startPart(headers: buffer[i..<end])
                i = end + 4
            case .epilogue:
                return out
            }
        }
    }

    /// Ends the body: it must have ended with the close delimiter, after the file part.
    func finish() throws(MultipartError) {
        switch state {
        case .epilogue:
            return
        case .preamble:
            throw MultipartError(malformed: "body", value: nil,
                                 "the body has no --\(boundary) line: it is not multipart/form-data with the "
                                 + "boundary of its Content-Type")
        default:
            throw MultipartError(malformed: "body", value: nil,
                                 "the body ends before its closing --\(boundary)-- line (the upload was cut?); "
                                 + "nothing was kept: upload the file again")
        }
    }

    /// Reads a part's headers and decides what it is: the file (read), or refused.
    private mutating func startPart(headers bytes: ArraySlice<UInt8>) throws(MultipartError) {
        var disposition: String?
        for line in String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n") where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else {
                throw MultipartError(malformed: "body", value: nil, "a part's header line has no colon: \(line.prefix(100))")
            }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch name {
            case "content-disposition":
                disposition = value
            case "content-transfer-encoding" where !["7bit", "8bit", "binary"].contains(value.lowercased()):
                throw MultipartError(rule: "Content-Transfer-Encoding", value: value,
                                     "is not supported: send the file's bytes as they are (binary)")
            default:
                continue
            }
        }
        guard let disposition else {
            throw MultipartError(malformed: "body", value: nil, "a part has no Content-Disposition header")
        }
        let parameters = Self.parameters(disposition)
        guard parameters.first?.value.lowercased() == "form-data" else {
            throw MultipartError(malformed: "Content-Disposition", value: disposition, "must be form-data")
        }
        let name = parameters.dropFirst().first { $0.name == "name" }?.value
        let filename = parameters.dropFirst().first { $0.name == "filename" || $0.name == "filename*" }?.value
        guard filename != nil || name == "file" else {
            throw MultipartError(rule: name.map { "form field \($0)" } ?? "form field", value: nil,
                                 "is not used: send only the CSV file, as the part named file; name the data "
                                 + "source with ?name=")
        }
        guard filePart == nil else {
            throw MultipartError(rule: "file", value: filename ?? name,
                                 "is a second file: send one file per upload")
        }
        filePart = (name, filename)
        state = .file
    }

    /// The position of `needle` in `haystack` at or after `from`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        let n = needle.count
        guard haystack.count - from >= n else { return nil }
        return haystack.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { d in
                let first = d[0]
                var p = from
                let last = h.count - n
                while p <= last {
                    if h[p] == first {
                        var k = 1
                        while k < n && h[p + k] == d[k] { k += 1 }
                        if k == n { return p }
                    }
                    p += 1
                }
                return nil
            }
        }
    }

    /// A header value's parts: the first is the value itself (`name` empty), then each
    /// `name=value` parameter (names lowercased, quoted values unquoted).
    static func parameters(_ header: String) -> [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        var current = ""
        var quoted = false
        var escaped = false
        var pieces: [String] = []
        for c in header {
            if escaped {
                current.append(c)
                escaped = false
            } else if quoted && c == "\\" {
                escaped = true
            } else if c == "\"" {
                quoted.toggle()
            } else if c == ";" && !quoted {
                pieces.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        pieces.append(current)
        for (i, piece) in pieces.enumerated() {
            let trimmed = piece.trimmingCharacters(in: .whitespaces)
            if i == 0 {
                out.append(("", trimmed))
            } else if let eq = trimmed.firstIndex(of: "=") {
                out.append((trimmed[..<eq].trimmingCharacters(in: .whitespaces).lowercased(),
                            trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)))
            }
        }
        return out
    }
}

/// The chunks of the file part of a multipart body, as `MultipartFileReader` finds them.
struct MultipartFileChunks<Base: AsyncSequence>: AsyncSequence where Base.Element == [UInt8] {
    typealias Element = [UInt8]
    let base: Base
    let boundary: String

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var reader: MultipartFileReader
        var ended = false

        mutating func next() async throws -> [UInt8]? {
            while !ended {
                guard let chunk = try await base.next() else {
                    ended = true
                    try reader.finish()
                    return nil
                }
                let bytes = try reader.feed(chunk)
                if !bytes.isEmpty { return bytes }
            }
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), reader: MultipartFileReader(boundary: boundary))
    }
}

/// A multipart upload refused: malformed (400), of a type not served (415) or breaking a rule of
/// uploads (422), with the field (a header, `body`, `file`) and the rule.
struct MultipartError: Error, Sendable, CustomStringConvertible {
    enum Kind: Sendable { case malformed, unsupported, rule }
    var kind: Kind
    var field: String
    var value: String?
    var rule: String

    init(malformed field: String, value: String?, _ rule: String) {
        self.kind = .malformed
        self.field = field
        self.value = value
        self.rule = rule
    }

    init(unsupported field: String, value: String?, _ rule: String) {
        self.kind = .unsupported
        self.field = field
        self.value = value
        self.rule = rule
    }

    init(rule field: String, value: String?, _ rule: String) {
        self.kind = .rule
        self.field = field
        self.value = value
        self.rule = rule
    }

    var description: String { "\(field) \(rule)" }

    var apiError: APIError {
        let message = "the multipart upload was refused: \(field) \(rule)"
        let issue = FieldIssue(field: field, value: value.map { JSONValue.string($0).jsonText }, rule: rule)
        switch kind {
        case .malformed:
            return APIError(.badRequest, "bad_request", message, field: field, value: issue.value, issues: [issue])
        case .unsupported:
            return APIError(.unsupportedMediaType, "unsupported_media_type", message, field: field, value: issue.value,
                            issues: [issue])
        case .rule:
            return APIError(.unprocessableContent, "invalid", message, field: field, value: issue.value, issues: [issue])
        }
    }
}
