import Testing
@testable import Importers

@Suite("CSV parser")
struct CSVParserTests {
    /// Parses `text` fed in chunks of `chunk` bytes.
    static func parse(_ text: String, chunk: Int = 1 << 16) -> [CSVParser.Record] {
        parse(Array(text.utf8), chunk: chunk)
    }

    static func parse(_ bytes: [UInt8], chunk: Int = 1 << 16) -> [CSVParser.Record] {
        var parser = CSVParser()
        var records: [CSVParser.Record] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunk)
            bytes[start..<end].withUnsafeBytes { parser.parse($0) { records.append($0) } }
            start = end
        }
        parser.finish { records.append($0) }
        return records
    }

    static func fields(_ records: [CSVParser.Record]) -> [[String]] {
        records.compactMap { if case .fields(let f, _) = $0 { f } else { nil } }
    }

    @Test("quoted fields with commas, doubled quotes and line breaks; CRLF and LF; same result at any chunk size")
    func rfc4180() {
        let text = "name,note,amount\r\n\"Doe, Jane\",\"said \"\"hi\"\"\",12\r\nplain,\"two\nlines\",3\nlast,,\"\"\r\n"
        let expected = [["name", "note", "amount"], ["Doe, Jane", "said \"hi\"", "12"], ["plain", "two\nlines", "3"],
                        ["last", "", ""]]
        for chunk in [1, 2, 3, 7, 1 << 16] {
            let records = Self.parse(text, chunk: chunk)
            #expect(Self.fields(records) == expected, "chunk \(chunk)")
        }
        // Lines: the record after the two-line field starts on line 5.
        if case .fields(_, let line) = Self.parse(text)[3] { #expect(line == 5) } else { Issue.record("no record") }
    }

    @Test("a byte order mark is skipped; no line break at the end; CR alone ends a record; blank lines are skipped")
    func bomAndEndings() {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        for chunk in [1, 2, 100] {
            #expect(Self.fields(Self.parse(bom + Array("a,b\n1,2".utf8), chunk: chunk)) == [["a", "b"], ["1", "2"]])
        }
        #expect(Self.fields(Self.parse("a,b\r1,2\r")) == [["a", "b"], ["1", "2"]])
        #expect(Self.fields(Self.parse("a\n\n\nb\n")) == [["a"], ["b"]])
        #expect(Self.fields(Self.parse("é,ü\n漢,🎉\n")) == [["é", "ü"], ["漢", "🎉"]])
    }

    @Test("empty input and header only")
    func emptyAndHeaderOnly() {
        #expect(Self.parse("").isEmpty)
        #expect(Self.fields(Self.parse("a,b\n")) == [["a", "b"]])
        #expect(Self.fields(Self.parse("a,b")) == [["a", "b"]])
    }

    @Test("malformed records name line and column, and parsing goes on with the next line")
    func malformed() {
        let records = Self.parse("a,b\nx\"y,2\n\"ok\"junk,3\n4,5\n\"open,6\n")
        #expect(records.count == 5)
        #expect(records[1] == .malformed(line: 2, column: 2,
                                         message: "a quote inside an unquoted field; quote the whole field and double the quote (\"\")"))
        #expect(records[2] == .malformed(line: 3, column: 5, message: "unexpected text after a closing quote"))
        #expect(records[3] == .fields(["4", "5"], line: 4))
        #expect(records[4] == .malformed(line: 5, column: 1,
                                         message: "a quoted field opened here is not closed before the end of the file"))
        let invalid = Self.parse([0x61, 0x2C, 0xFF, 0x0A, 0x62, 0x2C, 0x63, 0x0A])
        #expect(invalid.first == .malformed(line: 1, column: 3, message: "the field is not valid UTF-8"))
        #expect(invalid.last == .fields(["b", "c"], line: 2))
    }
}
