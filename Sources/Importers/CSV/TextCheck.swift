/// Checks, chunk by chunk, that an upload is text: valid UTF-8 (RFC 3629: no overlong forms, no
/// surrogates, nothing past U+10FFFF) without NUL bytes. A sequence split over chunks is checked
/// as a whole. A UTF-8 byte order mark is text (U+FEFF) and is kept; the CSV parser skips it.
///
/// The first offending byte is reported with its offset (from 0) and line (from 1; LF, CRLF and
/// CR end lines), so a refusal can say where the file stops being text.
public struct TextCheck: Sendable {
    /// Where the content stops being text, and why.
    public struct Violation: Error, Sendable, Hashable, CustomStringConvertible {
        /// The offset of the offending byte (0-based) and its line (1-based).
        public var offset: Int
        public var line: Int
        /// `nul` or `utf8`.
        public var kind: Kind
        public enum Kind: Sendable, Hashable { case nul, utf8 }

        public var description: String {
            switch kind {
            case .nul:
                return "byte \(offset) (line \(line)) is a NUL byte (this looks like a binary file)"
            case .utf8:
                return "byte \(offset) (line \(line)) is not valid UTF-8 (save the file as UTF-8, with or without a "
                    + "byte order mark)"
            }
        }
    }

    /// Bytes checked so far.
    public private(set) var offset = 0
    private var line = 1
    private var afterCR = false
    /// Continuation bytes still expected, and the allowed range of the next one.
    private var pending = 0
    private var low: UInt8 = 0x80
    private var high: UInt8 = 0xBF
    /// Where the sequence being completed started.
    private var sequenceStart = (offset: 0, line: 1)

    public init() {}

    /// Checks the next bytes of the content: nil when they are text so far, or the first violation.
    public mutating func check(_ bytes: UnsafeRawBufferPointer) -> Violation? {
        var i = 0
        let count = bytes.count
        while i < count {
            let byte = bytes[i]
            if pending > 0 {
                guard byte >= low && byte <= high else {
                    return Violation(offset: sequenceStart.offset, line: sequenceStart.line, kind: .utf8)
                }
                pending -= 1
                low = 0x80
                high = 0xBF
            } else if byte < 0x80 {
                if byte == 0 { return Violation(offset: offset + i, line: line, kind: .nul) }
                if byte == 0x0A {
                    if !afterCR { line += 1 }
                    afterCR = false
                } else if byte == 0x0D {
                    line += 1
                    afterCR = true
                } else {
                    afterCR = false
                }
            } else {
                afterCR = false
                sequenceStart = (offset + i, line)
                switch byte {
                case 0xC2...0xDF: pending = 1
                case 0xE0: pending = 2; low = 0xA0
                case 0xE1...0xEC, 0xEE...0xEF: pending = 2
                case 0xED: pending = 2; high = 0x9F
                case 0xF0: pending = 3; low = 0x90
                case 0xF1...0xF3: pending = 3
                case 0xF4: pending = 3; high = 0x8F
                default: return Violation(offset: offset + i, line: line, kind: .utf8)
                }
            }
            i += 1
        }
        offset += count
        return nil
    }

    /// Ends the content: a sequence left incomplete is not UTF-8.
    public func finish() -> Violation? {
        pending > 0 ? Violation(offset: sequenceStart.offset, line: sequenceStart.line, kind: .utf8) : nil
    }
}
