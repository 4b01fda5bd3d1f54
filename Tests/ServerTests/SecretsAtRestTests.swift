import RunlogJSON
import Access
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Importers
import Logging
import Testing
@testable import RunlogHTTP
import WorkflowModel
import Workflows

/// Secrets that reach the server (new API keys' text, S3 credentials) are never at rest in clear.
@Suite("HTTP API: secrets at rest")
struct SecretsAtRestTests {
    /// Whether the store's file holds `text` anywhere.
    static func storeHolds(_ server: TestServer, _ text: String) throws -> Bool {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: server.directory + "/data.mdb"))
        return bytes.range(of: Data(text.utf8)) != nil
    }

    @Test("POST /v1/keys with an Idempotency-Key keeps no key text; a retry gets 409 naming the key made")
    func keyTextNotKept() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let body: JSONValue = ["role": "service", "name": "ci"]
                let first = try await client.call(.post, "/v1/keys", key: server.admin, json: body,
                                                  headers: [RunlogAPI.idempotencyKey: "make-ci-key"])
                #expect(first.status == .created)
                let text = try #require(first.json["key"]?.stringValue)
                let id = try #require(first.json["id"]?.stringValue)
                // The kept answer is written once the writer commits again.
                await server.api.idempotency.settle()
                #expect(try server.store.requestRecord("idem/\(server.api.keys.authenticate(server.admin)?.id ?? "")/make-ci-key") != nil)
                #expect(try !Self.storeHolds(server, text))

                let retry = try await client.call(.post, "/v1/keys", key: server.admin, json: body,
                                                  headers: [RunlogAPI.idempotencyKey: "make-ci-key"])
                #expect(retry.status == .conflict)
                #expect(retry.json["error"]?["code"] == "api_key_already_created")
                #expect(retry.json["error"]?["message"]?.stringValue?.contains("DELETE /v1/keys/\(id)") == true)
                #expect(retry.json["created_key"]?["id"] == .string(id))
                #expect(retry.json["created_key"]?["role"] == "service")
                #expect(retry.headers[.location] == "/v1/keys/\(id)")
                #expect(!retry.json.jsonText.contains(text))
                // The key made by the first request works; no second key was made.
                #expect(try await client.call(.get, "/v1/quota", key: text).status == .ok)
                let keys = try await client.call(.get, "/v1/keys", key: server.admin)
                #expect(keys.json["keys"]?.arrayValue?.count == 4)
            }
        }
    }

    @Test("an answer kept by an earlier version with a key's text is never replayed, and is rewritten")
    func oldKeptKeyTextScrubbed() async throws {
        try await TestServer.with { server in
            let body: JSONValue = ["role": "auditor", "name": "old"]
            let adminId = try #require(server.api.keys.authenticate(server.admin)?.id)
            let name = "idem/\(adminId)/old-retry"
            let text = KeyEvent.textPrefix + "clear-text-of-an-old-key"
            let old: JSONValue = [
                "fingerprint": .string(IdempotencyCache.fingerprint(method: "POST", path: "/v1/keys",
                                                                    body: Array(body.jsonText.utf8))),
                "status": 201, "headers": ["Location": "/v1/keys/key_old", "Content-Type": "application/json"],
                "body": .string(JSONValue.object(["id": "key_old", "role": "auditor", "name": "old", "key": .string(text)])
                    .jsonText),
                "at": .integer(Int64(Date().timeIntervalSince1970 * 1000)),
            ]
            try await server.store.putRequestRecord(name, old.jsonBytes)
            try await server.test { client in
                let retry = try await client.call(.post, "/v1/keys", key: server.admin, json: body,
                                                  headers: [RunlogAPI.idempotencyKey: "old-retry"])
                #expect(retry.status == .conflict)
                #expect(retry.json["created_key"]?["id"] == "key_old")
                #expect(!retry.json.jsonText.contains(text))
            }
            let kept = try #require(try server.store.requestRecord(name))
            #expect(!String(decoding: kept, as: UTF8.self).contains(text))
        }
    }

    @Test("records kept forever (--idempotency-hours 0) that hold a key's text are rewritten at start")
    func keyTextScrubbedWithoutRetention() async throws {
        try await TestServer.with { server in
            let name = "idem/key_admin/forever"
            let text = KeyEvent.textPrefix + "clear-text-kept-forever"
            let old: JSONValue = [
                "fingerprint": "f", "status": 201, "headers": ["Location": "/v1/keys/key_old"],
                "body": .string(JSONValue.object(["id": "key_old", "role": "auditor", "name": "old", "key": .string(text)])
                    .jsonText),
                "at": 0,
            ]
            try await server.store.putRequestRecord(name, old.jsonBytes)
            let forever = IdempotencyCache(store: server.store, retentionHours: nil)
            // The server's sweeper: with no retention it makes one pass and returns.
            try await IdempotencySweeper(cache: forever, logger: Logger(label: "test")).run()
            let kept = try #require(try server.store.requestRecord(name), "a record kept forever is not deleted")
            #expect(!String(decoding: kept, as: UTF8.self).contains(text))
            #expect(String(decoding: kept, as: UTF8.self).contains("key_old"))
        }
    }

    @Test("S3 credentials are sealed in the store; refusals of credentials never show the secret")
    func s3CredentialsSealed() async throws {
        try await TestServer.with { server in
            let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY-secret"
            let s3: JSONValue = ["bucket": "b", "key": "k.csv", "region": "eu-west-1", "endpoint": "http://127.0.0.1:9"]
            try await server.test { client in
                let made = try await client.call(.post, "/v1/data-sources", key: server.service, json: [
                    "name": "bucket", "kind": "s3", "s3": s3,
                    "credentials": ["access_key_id": "AKID", "secret_access_key": .string(secret),
                                    "session_token": "tok-123456"],
                ])
                #expect(made.status == .created, "\(made.json)")
                let id = try #require(made.json["id"]?.stringValue)
                let entry = try #require(try server.store.vaultEntry("datasource/\(id)"))
                #expect(try JSONValue(parsing: entry)["sealed"]?.stringValue != nil)

                // A misspelled field, a wrong type, an empty value: named, never shown (also not in
                // the answer kept for an Idempotency-Key).
                for (credentials, field) in [
                    (["access_key_id": "AKID", "secret_acess_key": .string(secret)] as JSONValue,
                     "credentials.secret_acess_key"),
                    (["access_key_id": "AKID", "secret_access_key": [.string(secret)]], "credentials.secret_access_key"),
                    (["access_key_id": "AKID", "secret_access_key": .string(secret), "session_token": 42424242],
                     "credentials.session_token"),
                ] {
                    let refused = try await client.call(.post, "/v1/data-sources", key: server.service, json: [
                        "name": "bad", "kind": "s3", "s3": s3, "credentials": credentials,
                    ], headers: [RunlogAPI.idempotencyKey: field])
                    #expect(refused.status == .unprocessableContent)
                    #expect(refused.json["error"]?["field"] == .string(field), "\(refused.json)")
                    #expect(refused.json["error"]?["issues"]?[0]?["field"] == .string(field))
                    #expect(refused.json["error"]?["message"]?.stringValue?.contains("not shown") == true)
                    #expect(!refused.json.jsonText.contains(secret) && !refused.json.jsonText.contains("42424242"))
                }
                let empty = try await client.call(.post, "/v1/data-sources", key: server.service, json: [
                    "name": "bad", "kind": "s3", "s3": s3,
                    "credentials": ["access_key_id": "AKID", "secret_access_key": ""],
                ])
                #expect(empty.status == .unprocessableContent)
                #expect(empty.json["error"]?["field"] == "credentials.secret_access_key")
                #expect(empty.json["error"]?["value"] == nil)
            }
            #expect(try !Self.storeHolds(server, secret))
            #expect(try !Self.storeHolds(server, "tok-123456"))
        }
    }

    @Test("uploads are private whatever the process's umask: uploads/ 0700, each file 0600")
    func uploadModes() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let uploaded = try await client.call(.post, "/v1/data-sources/csv?name=modes", key: server.service,
                                                     body: "email\na@b.c\n")
                #expect(uploaded.status == .created)
            }
            let uploads = server.directory + "/uploads"
            let directoryMode = try FileManager.default.attributesOfItem(atPath: uploads)[.posixPermissions] as? Int
            #expect(directoryMode == 0o700)
            let files = try FileManager.default.contentsOfDirectory(atPath: uploads)
            #expect(!files.isEmpty)
            for file in files {
                let mode = try FileManager.default.attributesOfItem(atPath: uploads + "/" + file)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(file)")
            }
        }
    }
}
