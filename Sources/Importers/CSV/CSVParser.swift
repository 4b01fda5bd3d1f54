/// A streaming RFC 4180 parser: feed it bytes in chunks of any size and it emits records.
///
/// Quoted fields may hold commas, line breaks and doubled quotes (`""`). Records end with CRLF,
/// LF or CR. A UTF-8 byte order mark at the very start is skipped. Blank lines are skipped.
/// Malformed input (a quote inside an unquoted field, text after a closing quote, a field that is
/// not UTF-8, a quoted field still open at the end) is reported as a `malformed` record with its
/// line and column, and parsing goes on with the next line, so one bad row does not stop a file.
/// Columns count Unicode scalars from 1.
public struct CSVParser {
    public enum Record: Sendable, Hashable {
        /// The fields of one record and the line it starts on (1-based).
        case fields([String], line: Int)
        /// A record that is not valid CSV, with the line and column of the problem.
        case malformed(line: Int, column: Int, message: String)
    }

    private enum State {
        case fieldStart, unquoted, quoted, quoteInQuoted, skipping
    }

    private var state = State.fieldStart
    private var fields: [String] = []
    private var field: [UInt8] = []
    private var line = 1
    private var column = 0
    private var recordLine = 1
    private var quoteLine = 1
    private var quoteColumn = 1
    /// Where the current field began.
    private var fieldLine = 1
    private var fieldColumn = 1
    /// The previous byte was a CR that ended a record; an LF right after it belongs to it.
    private var afterCR = false
    private var bomBytesSeen = 0
    private var started = false

    public init() {
        field.reserveCapacity(64)
    }

    /// Parses `bytes`, calling `emit` for every record they complete.
    public mutating func parse(_ bytes: UnsafeRawBufferPointer, _ emit: (Record) throws -> Void) rethrows {
        var index = 0
        if !started {
            // Skip a byte order mark (EF BB BF), which may arrive split over chunks.
            let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
            while index < bytes.count, bomBytesSeen < 3, bytes[index] == bom[bomBytesSeen] {
                bomBytesSeen += 1
                index += 1
            }
            if index < bytes.count || bomBytesSeen == 3 {
                if bomBytesSeen > 0 && bomBytesSeen < 3 {
                    // Not a BOM after all: those bytes were data.
                    for byte in bom.prefix(bomBytesSeen) { try step(byte, emit) }
                }
                started = true
            }
        }
        while index < bytes.count {
            try step(bytes[index], emit)
            index += 1
        }
    }

    /// Ends the input: emits the last record if the data did not end with a line break.
    public mutating func finish(_ emit: (Record) throws -> Void) rethrows {
        switch state {
        case .quoted:
            try emit(.malformed(line: quoteLine, column: quoteColumn,
                                message: "a quoted field opened here is not closed before the end of the file"))
        case .skipping:
            break
        case .fieldStart where fields.isEmpty:
            break
        default:
            try endRecord(emit)
        }
        state = .fieldStart
        fields.removeAll(keepingCapacity: true)
        field.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private mutating func step(_ byte: UInt8, _ emit: (Record) throws -> Void) rethrows {
        let lf: UInt8 = 0x0A, cr: UInt8 = 0x0D, quote: UInt8 = 0x22, comma: UInt8 = 0x2C
        if afterCR {
            afterCR = false
            if byte == lf { return }
        }
        if byte & 0xC0 != 0x80 { column += 1 }
        switch state {
        case .fieldStart:
            if fields.isEmpty && field.isEmpty { recordLine = line }
            fieldLine = line
            fieldColumn = column
            switch byte {
            case quote:
                state = .quoted
                quoteLine = line
                quoteColumn = column
            case comma:
                _ = try endField(emit)
            case lf, cr:
                if fields.isEmpty {
                    newLine(byte)  // a blank line
                } else {
                    try endRecord(emit)
                    newLine(byte)
                }
            default:
                field.append(byte)
                state = .unquoted
            }
        case .unquoted:
            switch byte {
            case comma:
                if try endField(emit) { state = .fieldStart }
            case lf, cr:
                try endRecord(emit)
                newLine(byte)
            case quote:
                try fail("a quote inside an unquoted field; quote the whole field and double the quote (\"\")", emit)
            default:
                field.append(byte)
            }
        case .quoted:
            switch byte {
            case quote:
                state = .quoteInQuoted
            case lf:
                field.append(byte)
                line += 1
                column = 0
            case cr:
                field.append(byte)
            default:
                field.append(byte)
            }
        case .quoteInQuoted:
            switch byte {
            case quote:
                field.append(quote)
                state = .quoted
            case comma:
                if try endField(emit) { state = .fieldStart }
            case lf, cr:
                try endRecord(emit)
                newLine(byte)
            default:
                try fail("unexpected text after a closing quote", emit)
            }
        case .skipping:
            if byte == lf || byte == cr {
                state = .fieldStart
                newLine(byte)
            }
        }
    }

    private mutating func newLine(_ byte: UInt8) {
        line += 1
        column = 0
        afterCR = byte == 0x0D
    }

    /// Ends the current field; false (after reporting the record) when it is not valid UTF-8.
    private mutating func endField(_ emit: (Record) throws -> Void) rethrows -> Bool {
        guard let text = String(validating: field, as: UTF8.self) else {
            try emit(.malformed(line: fieldLine, column: fieldColumn, message: "the field is not valid UTF-8"))
            fields.removeAll(keepingCapacity: true)
            field.removeAll(keepingCapacity: true)
            state = .skipping
            return false
        }
        fields.append(text)
        field.removeAll(keepingCapacity: true)
        return true
    }

    /// Ends the record at a line break (or the end of the input).
    private mutating func endRecord(_ emit: (Record) throws -> Void) rethrows {
        if try endField(emit) {
            try emit(.fields(fields, line: recordLine))
        }
        fields.removeAll(keepingCapacity: true)
        state = .fieldStart
    }

    /// Reports the record as malformed and skips the rest of its line.
    private mutating func fail(_ message: String, _ emit: (Record) throws -> Void) rethrows {
        try emit(.malformed(line: line, column: column, message: message))
        fields.removeAll(keepingCapacity: true)
        field.removeAll(keepingCapacity: true)
        state = .skipping
    }
}
