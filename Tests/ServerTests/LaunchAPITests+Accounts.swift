// Launch API tests of accounts: adding and updating them, masked and never in clear, and an
// http_request step that uses and rotates them.
import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import RunlogTestSupport
import Synchronization
import Testing
@testable import RunlogHTTP
@testable import WorkflowModel
@testable import Workflows


extension LaunchAPITests {
    @Test("accounts: add, update one field keeping the others, cookies by name, masked, never in clear in log or logs")
    func accounts() async throws {
        let lines = LogCapture()
        try await TestServer.with(options: .init(logger: Logger(label: "capture", factory: { _ in lines.handler() }))) { server in
            let secrets = ["sk-live-SECRET-1", "hunter2-SECRET-2", "li-at-SECRET-3", "li-a-SECRET-4", "sk-live-SECRET-5"]
            try await server.test { client in
                let path = "/v3/integrations/linkedin/accounts"
                let made = try await client.launch(.post, path, key: server.service, json: ["account": [
                    "name": "Sales LinkedIn", "username": "sales@example.com", "password": .string(secrets[1]),
                    "api_key": .string(secrets[0]), "cookies": ["li_at": .string(secrets[2])],
                ]])
                #expect(made.status == .created, "\(made.json)")
                let account = try #require(made.json["account"])
                let uid = try #require(account["uid"]?.stringValue)
                #expect(uid.hasPrefix("acc_"))
                #expect(account["api_key"] == "********")
                #expect(account["password"] == "********")
                #expect(account["has_password"] == true)
                #expect(account["username"] == "sales@example.com")
                #expect(account["cookies"] == ["li_at": "********"])

                // One field: the password; the rest stays.
                let password = try await client.launch(.post, path, key: server.service,
                                                       json: ["account": ["uid": .string(uid), "password": "changed-SECRET-6"]])
                #expect(password.status == .ok)
                #expect(password.json["account"]?["name"] == "Sales LinkedIn")
                #expect(password.json["account"]?["api_key"] == "********")
                #expect(password.json["account"]?["cookies"] == ["li_at": "********"])
                // Cookies by name: li_a added, li_at kept, then li_at removed with null.
                _ = try await client.launch(.post, path, key: server.service,
                                            json: ["account": ["uid": .string(uid), "cookies": ["li_a": .string(secrets[3])]]])
                let credentials = try await server.accounts.headers(forAccount: uid, project: Self.project)
                #expect(credentials["Authorization"] == "Bearer \(secrets[0])")
                #expect(credentials["Cookie"] == "li_a=\(secrets[3]); li_at=\(secrets[2])")
                let removed = try await client.launch(.post, path, key: server.service,
                                                      json: ["account": ["uid": .string(uid), "cookies": ["li_at": nil], "api_key": nil]])
                #expect(removed.json["account"]?["cookies"] == ["li_a": "********"])
                #expect(removed.json["account"]?["api_key"] == .null)
                let basic = try await server.accounts.headers(forAccount: uid, project: Self.project)
                #expect(basic["Authorization"] == "Basic " + Data("sales@example.com:changed-SECRET-6".utf8).base64EncodedString())
                _ = try await client.launch(.post, path, key: server.service,
                                            json: ["account": ["uid": .string(uid), "api_key": .string(secrets[4])]])

                let listed = try await client.launch(.get, path, key: server.auditor)
                #expect(listed.json["accounts"]?.arrayValue?.count == 1)
                #expect(listed.json["accounts"]?[0]?["uid"]?.stringValue == uid)

                // Refusals name the field and never repeat a secret.
                let unknown = try await client.launch(.post, path, key: server.service,
                                                      json: ["account": ["uid": "acc_nope", "api_key": "x"]])
                #expect(unknown.status == .notFound)
                let wrongIntegration = try await client.launch(.post, "/v3/integrations/google/accounts", key: server.service,
                                                               json: ["account": ["uid": .string(uid), "name": "x"]])
                #expect(wrongIntegration.status == .notFound)
                let noName = try await client.launch(.post, path, key: server.service, json: ["account": ["api_key": "x"]])
                #expect(noName.status == .unprocessableContent)
                #expect(noName.json["error"]?["field"] == "account.name")
                // Said once, not twice ("…: account.name: is required for a new account").
                #expect(noName.json["error"]?["message"] == "account.name is required for a new account")
                let badSecret = try await client.launch(.post, path, key: server.service,
                                                        json: ["account": ["name": "n", "api_key": "line\nbreak-SECRET-7"]])
                #expect(badSecret.json["error"]?["field"] == "account.api_key")
                #expect(!badSecret.json.jsonText.contains("SECRET-7"))
                let extra = try await client.launch(.post, path, key: server.service, json: ["account": ["name": "n", "token": "t"]])
                #expect(extra.json["error"]?["field"] == "account.token")

                // Never in clear: not in any answer so far, any event, the LMDB file or the server's logs.
                for answer in [made.json, password.json, removed.json, listed.json, unknown.json] {
                    for secret in secrets { #expect(!answer.jsonText.contains(secret)) }
                }
                let events = try server.store.readAll(limit: .max)
                let saved = events.filter { $0.type == AccountBook.savedType }
                #expect(saved.count == 5)
                #expect(saved.allSatisfy { $0.stream == "account-\(uid)" })
                let payload = try JSONValue(parsing: saved.last!.payload)
                #expect(payload["apiKey"]?["sealed"]?.stringValue != nil)
                #expect(payload["username"] == "sales@example.com")
                for event in events {
                    let text = String(decoding: event.payload, as: UTF8.self)
                    for secret in secrets + ["changed-SECRET-6"] { #expect(!text.contains(secret), "\(event.type)") }
                }
            }
            let data = try Data(contentsOf: URL(fileURLWithPath: server.directory).appendingPathComponent("data.mdb"))
            for secret in secrets + ["changed-SECRET-6"] {
                #expect(data.range(of: Data(secret.utf8)) == nil, "\(secret) is in data.mdb")
            }
            let logged = lines.text
            #expect(logged.contains("/v3/integrations/linkedin/accounts"))
            for secret in secrets + ["changed-SECRET-6"] { #expect(!logged.contains(secret)) }
            // The key file the server made is private.
            let mode = try FileManager.default.attributesOfItem(atPath: server.directory + "/secret.key")[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test("an http_request step uses the account's api key, rotates accounts, and fails clearly on an unknown account")
    func httpStepWithAccount() async throws {
        let counter = try HTTPCounter()
        defer { counter.stop() }
        let lines = LogCapture()
        try await TestServer.with(options: .init(http: URLSessionHTTPPerformer(),
                                                 logger: Logger(label: "capture", factory: { _ in lines.handler() }))) { server in
            try await server.test { client in
                let path = "/v3/integrations/crm/accounts"
                var uids: [String] = []
                for (i, secret) in ["key-A-SECRET", "key-B-SECRET"].enumerated() {
                    let made = try await client.launch(.post, path, key: server.service,
                                                       json: ["account": ["name": .string("crm \(i)"), "api_key": .string(secret),
                                                                          "cookies": ["sid": .string("cookie-\(i)-SECRET")]]])
                    uids.append(try #require(made.json["account"]?["uid"]?.stringValue))
                }
                let workflow = try await APITests.activeWorkflow(client, server.service, definition: Self.httpDefinition(counter.url + "/call"))
                let scheduled = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service, json: [
                    "inputs": [["first_name": "a"], ["first_name": "b"], ["first_name": "c"], ["first_name": "d"]],
                    "steps": [["step_uid": "call", "accounts": .array(uids.map(JSONValue.string)),
                               "accounts_rotation_enabled": true, "output_column": "response"]],
                ])
                let job = try #require(scheduled.json["job_uid"]?.stringValue)
                let view = try await Self.job(client, server, job)
                #expect(view["status"] == "Finished", "\(view)")
                let stats = try counter.stats()
                let auth = (stats["auth"] as? [String] ?? []).sorted()
                #expect(auth == ["Bearer key-A-SECRET", "Bearer key-A-SECRET", "Bearer key-B-SECRET", "Bearer key-B-SECRET"])
                let cookies = (stats["cookies"] as? [String] ?? []).sorted()
                #expect(cookies == ["sid=cookie-0-SECRET", "sid=cookie-0-SECRET", "sid=cookie-1-SECRET", "sid=cookie-1-SECRET"])
                let results = try await client.launch(.get, "/v3/jobs/\(job)/results", key: server.auditor)
                #expect(results.json["results"]?[0]?["response"]?["status"] == 200)

                // Without rotation every run uses accounts[0].
                let single = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service, json: [
                    "inputs": [["first_name": "e"], ["first_name": "f"]],
                    "steps": [["step_uid": "call", "accounts": .array(uids.map(JSONValue.string))]],
                ])
                let singleJob = try #require(single.json["job_uid"]?.stringValue)
                #expect(try await Self.job(client, server, singleJob)["status"] == "Finished")
                let after = (try counter.stats()["auth"] as? [String] ?? [])
                #expect(Array(after.suffix(2)) == ["Bearer key-A-SECRET", "Bearer key-A-SECRET"])

                // A step's own Authorization header wins over the account's api key.
                let own = try await client.launch(.post, "/v3/workflows/\(workflow)/schedule", key: server.service, json: [
                    "inputs": [["first_name": "g"]],
                    "steps": [["step_uid": "call", "accounts": [.string(uids[1])],
                               "parameters": ["headers": ["Authorization": "Token mine"]]]],
                ])
                let ownJob = try #require(own.json["job_uid"]?.stringValue)
                #expect(try await Self.job(client, server, ownJob)["status"] == "Finished")
                #expect((try counter.stats()["auth"] as? [String])?.last == "Token mine")

                // An account named by the definition that does not exist: the step fails, naming it.
                let missing = try await APITests.activeWorkflow(
                    client, server.service, definition: Self.httpDefinition(counter.url + "/call", account: "acc_gone"))
                let run = try await client.call(.post, "/v1/workflows/\(missing)/runs", key: server.service,
                                                json: ["parameters": ["first_name": "z"]])
                let runId = try #require(run.json["id"]?.stringValue)
                _ = await server.engine.waitUntilIdle()
                let failed = try await client.call(.get, "/v1/runs/\(runId)", key: server.auditor)
                #expect(failed.json["status"] == "failed")
                #expect(failed.json["failure"]?.stringValue?.contains("account acc_gone does not exist") == true)

                // The credentials reached the server and nothing else.
                for event in try server.store.readAll(limit: .max) {
                    let text = String(decoding: event.payload, as: UTF8.self)
                    #expect(!text.contains("SECRET"), "\(event.type): \(text)")
                }
            }
            #expect(!lines.text.contains("SECRET"))
        }
    }
}
