import RunlogJSON
import HTTPTypes
import Foundation
import Hummingbird
import NIOCore
import WorkflowModel
import Workflows

/// A JSON request body read as an object, with typed field access that names the field, the
/// value and the rule when the input is wrong.
struct BodyFields {
    let fields: [String: JSONValue]
    /// The whole body, nil when there was none.
    let raw: JSONValue?

    /// Reads `json` as an object; with `allowed`, a field not in it is refused.
    init(_ json: JSONValue?, allowed: Set<String>?) throws {
        raw = json
        guard let json else {
            fields = [:]
            return
        }
        guard case .object(let object) = json else {
            throw APIError.badRequest("the request body must be a JSON object", field: "body", value: json.typeName)
        }
        if let allowed {
            // The first unknown name in sorted order, found in one pass.
            var first: String?
            for name in object.keys where !allowed.contains(name) && first.map({ name < $0 }) ?? true { first = name }
            if let name = first {
                throw APIError.invalid(field: name, value: object[name],
                                       rule: "is not a known field (known: \(allowed.sorted().joined(separator: ", ")))")
            }
        }
        fields = object
    }

    func value(_ name: String) -> JSONValue? {
        guard let value = fields[name], value != .null else { return nil }
        return value
    }

    func string(_ name: String) throws -> String? {
        guard let value = value(name) else { return nil }
        guard case .string(let text) = value else { throw APIError.invalid(field: name, value: value, rule: "must be a string") }
        return text
    }

    func requiredString(_ name: String) throws -> String {
        guard let text = try string(name) else { throw Self.missing(name, "a string") }
        return text
    }

    func bool(_ name: String) throws -> Bool? {
        guard let value = value(name) else { return nil }
        guard case .bool(let flag) = value else { throw APIError.invalid(field: name, value: value, rule: "must be true or false") }
        return flag
    }

    func int(_ name: String) throws -> Int? {
        guard let value = value(name) else { return nil }
        switch value {
        case .integer(let n) where n >= Int64(Int32.min) && n <= Int64(Int32.max): return Int(n)
        case .number(let d) where d.rounded() == d && abs(d) < 2e9: return Int(d)
        default: throw APIError.invalid(field: name, value: value, rule: "must be an integer")
        }
    }

    func requiredInt(_ name: String) throws -> Int {
        guard let n = try int(name) else { throw Self.missing(name, "an integer") }
        return n
    }

    func number(_ name: String) throws -> Double? {
        guard let value = value(name) else { return nil }
        guard let n = value.numericValue else { throw APIError.invalid(field: name, value: value, rule: "must be a number") }
        return n
    }

    func requiredNumber(_ name: String) throws -> Double {
        guard let n = try number(name) else { throw Self.missing(name, "a number") }
        return n
    }

    static func missing(_ name: String, _ what: String) -> APIError {
        APIError(.unprocessableContent, "invalid", "\(name) is required: \(what)", field: name,
                 issues: [FieldIssue(field: name, value: nil, rule: "is required: \(what)")])
    }
}

extension Request {
    /// The body, at most the body limit (413 beyond it).
    func bodyBytes() async throws -> [UInt8] {
        if let length = headers[.contentLength].flatMap(Int.init), length > RunlogRequestContext.bodyLimit {
            throw APIError.bodyTooLarge
        }
        do {
            let buffer = try await body.collect(upTo: RunlogRequestContext.bodyLimit)
            return Array(buffer.readableBytesView)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError.bodyTooLarge
        } catch is NIOTooManyBytesError {
            // A chunked body has no Content-Length: its size is known only while it is read.
            throw APIError.bodyTooLarge
        }
    }

    /// A query parameter as an integer in `range`; 400 naming it otherwise.
    func queryInt<T: FixedWidthInteger>(_ name: String, _ type: T.Type = T.self, in range: ClosedRange<T>) throws -> T? {
        guard let text = uri.queryParameters[name[...]].map(String.init), !text.isEmpty else { return nil }
        guard let value = T(text), range.contains(value) else {
            throw APIError.badRequest("query parameter \(name) must be an integer from \(range.lowerBound) to "
                                      + "\(range.upperBound)", field: name, value: text)
        }
        return value
    }

    func query(_ name: String) -> String? {
        uri.queryParameters[name[...]].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `If-Match` as a stream version: `"3"`, `3` or `W/"3"`; nil when absent or `*`.
    func ifMatch() throws -> UInt64? {
        guard let header = headers[.ifMatch]?.trimmingCharacters(in: .whitespaces), header != "*" else { return nil }
        var text = Substring(header)
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = text.dropFirst().dropLast() }
        // Versions are JSON integers: 2^63 - 1 at most (and an Int, which the draft's version is).
        guard let version = UInt64(text), version <= UInt64(Int64.max) else {
            throw APIError.badRequest("If-Match must be an ETag this server gave (a quoted version such as \"3\", "
                                      + "at most 9223372036854775807)", field: "If-Match", value: header)
        }
        return version
    }
}

/// An ETag of a stream or draft version.
func etag<T: BinaryInteger>(_ version: T) -> String { "\"\(version)\"" }
