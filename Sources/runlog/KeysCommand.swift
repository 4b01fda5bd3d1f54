import RunlogJSON
import Access
import ArgumentParser
import EventLog
import LMDBStore
import Foundation
import WorkflowModel
import Workflows

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage the API keys of the HTTP API.",
        discussion: """
            Keys are stored only as SHA-256 hashes: a new key is printed once and cannot be shown \
            again. Make the first admin key with `runlog keys create --role admin` before starting \
            the server; while it runs, use --server URL --key ADMIN-KEY.
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it (once).")
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @Option(help: "service (commands and reads), auditor (reads and the log) or admin (everything).")
        var role: String
        @Option(help: "A name to tell the key by.") var name = ""

        func validate() throws {
            guard Role(rawValue: role) != nil else {
                throw ValidationError("--role \(role) is unknown: use service, auditor or admin")
            }
        }

        func run() async throws {
            if let client = try server.client() {
                let answer = try await client.send(.POST, "/v1/keys", body: ["role": .string(role), "name": .string(name)])
                print(answer["key"]?.stringValue ?? "")
                FileHandle.standardError.write(Data("key \(answer["id"]?.stringValue ?? "?") (\(role)) created\n".utf8))
                return
            }
            let opened = try await store.openForWriting()
            defer { opened.close() }
            let made = KeyEvent.make(role: Role(rawValue: role)!, name: name)
            var event = made.event
            event.metadata = EventMetadata(actor: "runlog-cli")
            do {
                _ = try await opened.append(to: KeyEvent.stream, expected: .any, [event])
            } catch {
                throw CLIError(error.message)
            }
            print(made.key)
            FileHandle.standardError.write(Data("key \(made.id) (\(role)) created\n".utf8))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys (ids, roles, names; never secrets).")
        @OptionGroup var store: StoreOptions

        func run() async throws {
            let opened = try await store.open(readOnly: true)
            defer { opened.close() }
            let ring = try KeyRing(store: opened)
            print("ID                                    ROLE     CREATED                   STATUS   NAME")
            for key in ring.all {
                print(pad(key.id, 38) + pad(key.role.rawValue, 9) + pad(JSONText.timestamp(milliseconds: key.createdAt), 26)
                      + pad(key.revokedAt == nil ? "live" : "revoked", 9) + key.name)
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key: it is refused from then on.")
        @OptionGroup var store: StoreOptions
        @OptionGroup var server: ServerOptions
        @Argument(help: "The key id (key_…).") var id: String

        func run() async throws {
            if let client = try server.client() {
                _ = try await client.send(.DELETE, "/v1/keys/\(id)")
                print("key \(id) revoked")
                return
            }
            let opened = try await store.openForWriting()
            defer { opened.close() }
            guard try KeyRing(store: opened).key(id: id) != nil else { throw CLIError("key \(id) does not exist") }
            var event = KeyEvent.revoked(id)
            event.metadata = EventMetadata(actor: "runlog-cli")
            do {
                _ = try await opened.append(to: KeyEvent.stream, expected: .any, [event])
            } catch {
                throw CLIError(error.message)
            }
            print("key \(id) revoked")
        }
    }
}
