import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
@testable import RunlogHTTP
import WorkflowModel
import Workflows

/// CSV uploads as `multipart/form-data` (what `curl -F file=@rows.csv` and browsers send), the text
/// rule every upload must meet, and the query box on converted values, through the HTTP application.
@Suite("HTTP API: form uploads, text-only uploads, typed query box")
struct UploadFormTests {
    /// A boundary as curl makes one.
    static let boundary = "------------------------d74496d66958873e"

    /// A part as curl writes it: its headers, a blank line, the content.
    struct Part {
        var headers: String
        var content: [UInt8]

        static func file(_ content: [UInt8], name: String = "file", filename: String = "rows.csv",
                         type: String = "text/csv") -> Part {
            Part(headers: "Content-Disposition: form-data; name=\"\(name)\"; filename=\"\(filename)\"\r\n"
                     + "Content-Type: \(type)",
                 content: content)
        }

        static func field(_ name: String, _ value: String) -> Part {
            Part(headers: "Content-Disposition: form-data; name=\"\(name)\"", content: Array(value.utf8))
        }
    }

    /// A multipart/form-data body with CRLFs as curl sends it.
    static func form(_ parts: [Part], boundary: String = boundary) -> [UInt8] {
        var body: [UInt8] = []
        for part in parts {
            body += Array("--\(boundary)\r\n\(part.headers)\r\n\r\n".utf8) + part.content + Array("\r\n".utf8)
        }
        return body + Array("--\(boundary)--\r\n".utf8)
    }

    static let formType = "multipart/form-data; boundary=\(boundary)"

    static func upload(_ client: any TestClientProtocol, _ key: String, _ body: [UInt8], type: String?,
                       name: String = "rows") async throws -> (status: HTTPResponse.Status, json: JSONValue) {
        var headers: HTTPFields = [.authorization: "Bearer \(key)"]
        if let type { headers[.contentType] = type }
        return try await client.execute(uri: "/v1/data-sources/csv?name=\(name)", method: .post, headers: headers,
                                        body: ByteBuffer(bytes: body)) { response in
            (response.status, (try? JSONValue(parsing: Array(response.body.readableBytesView))) ?? .null)
        }
    }

    /// The bytes the server stored for a data source.
    static func stored(_ server: TestServer, _ made: JSONValue) throws -> [UInt8] {
        let id = try #require(made["id"]?.stringValue)
        return Array(try Data(contentsOf: URL(fileURLWithPath: server.directory + "/uploads/\(id).csv")))
    }

    static func signups(_ rows: Int) -> [UInt8] {
        var csv = "email,amount\r\n"
        for i in 1...rows { csv += "user\(i)@example.com,\(i)\r\n" }
        return Array(csv.utf8)
    }

    /// Saves an importer on `sourceId` with `condition`, dry-runs it and returns the finished run.
    static func dryRun(_ client: any TestClientProtocol, _ key: String, workflow: String, source: String,
                       condition: JSONValue? = nil) async throws -> JSONValue {
        var body: [String: JSONValue] = ["name": "form", "data_source_id": .string(source), "workflow_id": .string(workflow),
                                         "mapping": ["columns": ["email": "email", "amount": "amount"]]]
        if let condition { body["query"] = ["condition": condition] }
        let importer = try await client.call(.post, "/v1/importers", key: key, json: .object(body))
        #expect(importer.status == .created, "\(importer.json)")
        let id = try #require(importer.json["id"]?.stringValue)
        let dry = try await client.call(.post, "/v1/importers/\(id)/runs", key: key, json: ["dry_run": true])
        return try await ImporterAPITests.finished(client, key, try #require(dry.json["id"]?.stringValue))
    }

    @Test("a form upload as curl -F sends it is stored as the file part alone; a dry run sees its header and rows")
    func curlForm() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let wf = try await APITests.activeWorkflow(client, key)
                let csv = Self.signups(30)
                let made = try await Self.upload(client, key, Self.form([.file(csv)]), type: Self.formType)
                #expect(made.status == .created, "\(made.json)")
                #expect(made.json["columns"] == ["email", "amount"])
                #expect(made.json["bytes"]?.int == csv.count)
                #expect(try Self.stored(server, made.json) == csv)
                let dry = try await Self.dryRun(client, key, workflow: wf, source: try #require(made.json["id"]?.stringValue))
                #expect(dry["status"] == "completed", "\(dry)")
                #expect(dry["progress"]?["rows_read"] == 30)
                #expect(dry["progress"]?["runs_to_create"] == 30)
                #expect(dry["progress"]?["rows_errored"] == 0)
                // A boundary in quotes, a preamble and an epilogue, a part without a filename named file.
                let quoted = Array("preamble\r\n".utf8) + Self.form([Part(headers: "Content-Disposition: form-data; name=file",
                                                                          content: csv)], boundary: "a b")
                    + Array("epilogue".utf8)
                let other = try await Self.upload(client, key, quoted, type: "multipart/form-data; boundary=\"a b\"")
                #expect(other.status == .created, "\(other.json)")
                #expect(try Self.stored(server, other.json) == csv)
            }
        }
    }

    @Test("a form upload larger than many reads, through a real socket, with near-boundaries in the file")
    func largeFormOverSocket() async throws {
        try await TestServer.with { server in
            try await server.application.test(.live) { client in
                let key = server.service
                let wf = try await APITests.activeWorkflow(client, key)
                // Lines that begin like the delimiter (CRLF, --, most of the boundary) but are not it.
                var csv = "email,amount\r\n"
                let nearly = String(Self.boundary.dropLast())
                var rows = 0
                while csv.utf8.count < 3_000_000 {
                    rows += 1
                    csv += rows % 1000 == 0 ? "\"\(nearly)\",\(rows)\r\n" : "user\(rows)@example.com,\(rows)\r\n"
                }
                let bytes = Array(csv.utf8)
                let made = try await Self.upload(client, key, Self.form([.file(bytes)]), type: Self.formType)
                #expect(made.status == .created, "\(made.json)")
                #expect(made.json["bytes"]?.int == bytes.count)
                #expect(try Self.stored(server, made.json) == bytes)
                let dry = try await Self.dryRun(client, key, workflow: wf, source: try #require(made.json["id"]?.stringValue))
                #expect(dry["progress"]?["rows_read"]?.int == rows)
                #expect(dry["progress"]?["runs_to_create"]?.int == rows)
            }
            #expect(try UploadFailureTests.uploads(server).count == 1)
        }
    }

    @Test("the reader finds a delimiter split anywhere between chunks, and gives the file part's bytes exactly")
    func splitAnywhere() throws {
        let content = Array("a,b\r\n1,2\r\n--not-it\r\n\r\n-\r".utf8)
        let body = Array("ignored preamble\r\n".utf8)
            + Self.form([.file(content)]).dropLast(2) + Array(" \t\r\nepilogue".utf8)  // padding after the close
        func read(_ chunks: [[UInt8]]) throws -> [UInt8] {
            var reader = MultipartFileReader(boundary: Self.boundary)
            var out: [UInt8] = []
            for chunk in chunks { out += try reader.feed(chunk) }
            try reader.finish()
            return out
        }
        for cut in 0...body.count {
            #expect(try read([Array(body[..<cut]), Array(body[cut...])]) == content, "cut at \(cut)")
        }
        #expect(try read(body.map { [$0] }) == content)
        for size in [2, 3, 5, 7, 13, 64] {
            let chunks = stride(from: 0, to: body.count, by: size).map { Array(body[$0..<min(body.count, $0 + size)]) }
            #expect(try read(chunks) == content, "chunks of \(size)")
        }
    }

    @Test("a form with a binary file, several files, no file, another field, or cut short is refused; nothing is kept")
    func refusedForms() async throws {
        try await TestServer.with { server in
            let head = try server.store.head().position
            try await server.test { client in
                let key = server.service
                let csv = Self.signups(3)
                let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52]
                let cases: [(body: [UInt8], type: String, status: HTTPResponse.Status, field: String, says: String)] = [
                    (Self.form([.file(png, filename: "logo.png", type: "image/png")]), Self.formType,
                     .unprocessableContent, "file", "not valid UTF-8"),
                    (Self.form([.file(Array("a,b\n1,\u{0}\n".utf8))]), Self.formType, .unprocessableContent, "file",
                     "byte 6 (line 2) is a NUL byte"),
                    (Self.form([.file(csv), .file(csv, name: "more", filename: "more.csv")]), Self.formType,
                     .unprocessableContent, "file", "send one file per upload"),
                    (Self.form([]), Self.formType, .unprocessableContent, "file", "no file part"),
                    (Self.form([Part(headers: "Content-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n"
                                         + "Content-Transfer-Encoding: base64", content: Array("YSxiCjEsMgo=".utf8))]),
                     Self.formType, .unprocessableContent, "Content-Transfer-Encoding", "send the file's bytes as they are"),
                    (Self.form([.file([])]), Self.formType, .unprocessableContent, "file", "the file is empty"),
                    (Self.form([Part(headers: "Content-Type: text/csv", content: csv)]), Self.formType, .badRequest, "body",
                     "no Content-Disposition"),
                    (Self.form([.field("name", "signups"), .file(csv)]), Self.formType, .unprocessableContent,
                     "form field name", "?name="),
                    (Array(Self.form([.file(csv)]).dropLast(30)), Self.formType, .badRequest, "body",
                     "ends before its closing"),
                    (csv, Self.formType, .badRequest, "body", "has no --\(Self.boundary) line"),
                    (Self.form([.file(csv)]), "multipart/form-data", .badRequest, "Content-Type", "boundary"),
                    (Self.form([.file(csv)]), "multipart/mixed; boundary=\(Self.boundary)", .unsupportedMediaType,
                     "Content-Type", "must be multipart/form-data"),
                ]
                for (body, type, status, field, says) in cases {
                    let refused = try await Self.upload(client, key, body, type: type)
                    #expect(refused.status == status, "\(says): \(refused.json)")
                    #expect(refused.json["error"]?["field"] == .string(field), "\(refused.json)")
                    let message = refused.json["error"]?["message"]?.stringValue ?? ""
                    #expect(message.contains(says), "\(message)")
                }
            }
            #expect(try UploadFailureTests.uploads(server) == [])
            #expect(try server.store.head().position == head)
        }
    }

    @Test("a raw upload that is not UTF-8 text (invalid UTF-8, NUL, Latin-1, UTF-16) is refused with where; a BOM is kept")
    func textOnly() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let head = try server.store.head().position
                for (body, says) in [
                    (Array("a,b\n1,".utf8) + [0xFF] + Array("\n".utf8), "byte 6 (line 2) is not valid UTF-8"),
                    (Array("a,b\r\n1,2\r\n3,".utf8) + [0] + Array("\r\n".utf8), "byte 12 (line 3) is a NUL byte"),
                    (Array("name\ncaf".utf8) + [0xE9] + Array("\n".utf8), "byte 8 (line 2) is not valid UTF-8"),
                    ([0xFF, 0xFE] + Array("a,b\n".utf8).flatMap { [$0, 0] }, "byte 0 (line 1) is not valid UTF-8"),
                    (Array("a,b\n1,".utf8) + [0xE2, 0x82], "byte 6 (line 2) is not valid UTF-8"),
                ] as [([UInt8], String)] {
                    let refused = try await Self.upload(client, key, body, type: "text/csv")
                    #expect(refused.status == .unprocessableContent, "\(refused.json)")
                    #expect(refused.json["error"]?["field"] == "file")
                    let message = refused.json["error"]?["message"]?.stringValue ?? ""
                    #expect(message.contains(says), "\(message)")
                }
                #expect(try UploadFailureTests.uploads(server) == [])
                #expect(try server.store.head().position == head)
                // A byte order mark is text: kept in the file, skipped by the header.
                let bom: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("a,b\n1,€\n".utf8)
                for (body, type) in [(bom, "text/csv"), (Self.form([.file(bom)]), Self.formType)] {
                    let made = try await Self.upload(client, key, body, type: type)
                    #expect(made.status == .created, "\(made.json)")
                    #expect(made.json["columns"] == ["a", "b"])
                    #expect(made.json["bytes"]?.int == bom.count)
                }
            }
        }
    }

    @Test("the query box compares converted values over HTTP; a name the data lacks is 422 naming it")
    func typedQuery() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let key = server.service
                let wf = try await APITests.activeWorkflow(client, key)
                let made = try await Self.upload(client, key, Array("email,amount\na@x,6\nb@x,50\nc@x,60\nd@x,100\n".utf8),
                                                 type: "text/csv")
                let source = try #require(made.json["id"]?.stringValue)
                let dry = try await Self.dryRun(client, key, workflow: wf, source: source, condition: ["amount": ["$gte": 50]])
                #expect(dry["progress"]?["runs_to_create"] == 3)
                #expect(dry["progress"]?["rows_skipped"] == 1)
                let refused = try await client.call(.post, "/v1/importers", key: key, json: [
                    "name": "bad", "data_source_id": .string(source), "workflow_id": .string(wf),
                    "mapping": ["columns": ["email": "email", "amount": "amount"]],
                    "query": ["condition": ["amont": ["$gte": 50]]],
                ])
                #expect(refused.status == .unprocessableContent)
                #expect(refused.json["error"]?["field"] == "query.condition.amont")
                #expect(refused.json["error"]?["issues"]?[0]?["rule"]?.stringValue?.contains("names amont, which is not a column")
                        == true, "\(refused.json)")
            }
        }
    }
}
