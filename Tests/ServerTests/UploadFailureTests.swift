import EventLog
import LMDBStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Importers
import Synchronization
import RunlogTestSupport
import Testing
@testable import RunlogHTTP
import WorkflowModel
import Workflows

/// CSV uploads that fail leave nothing in `uploads/`; a full disk is a 507 that says so.
@Suite("HTTP API: failed uploads")
struct UploadFailureTests {
    static func uploads(_ server: TestServer) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: server.directory + "/uploads").sorted()
    }

    @Test("an upload refused after the file was written (a header too large to record) leaves no file")
    func refusedUploadLeavesNothing() async throws {
        try await TestServer.with { server in
            let head = try server.store.head().position
            try await server.test { client in
                // One column name of 1.1 MB: the file is written, then its event is too large to record.
                let csv = String(repeating: "h", count: 1_100_000) + "\n1\n"
                let refused = try await client.call(.post, "/v1/data-sources/csv?name=wide", key: server.service, body: csv)
                #expect(refused.status != .created)
                #expect(refused.json["error"]?["message"]?.stringValue?.isEmpty == false, "\(refused.json)")
            }
            #expect(try Self.uploads(server) == [])
            #expect(try server.store.head().position == head)
        }
    }

    @Test("start-up deletes what a killed upload left (a .partial, a file never recorded) and keeps recorded files")
    func startUpRemovesLeftovers() async throws {
        try await TestServer.with { server in
            let kept = try await server.test { client in
                let made = try await client.call(.post, "/v1/data-sources/csv?name=ok", key: server.service,
                                                 body: "a,b\n1,2\n")
                #expect(made.status == .created)
                return try #require(made.json["id"]?.stringValue)
            }
            // What SIGKILL leaves: a file still being written, and one moved into place before its
            // event was committed.
            let uploads = server.directory + "/uploads/"
            #expect(FileManager.default.createFile(atPath: uploads + "ds_killed.csv.partial",
                                                   contents: Data("a,b\n1".utf8)))
            #expect(FileManager.default.createFile(atPath: uploads + "ds_unrecorded.csv", contents: Data("a,b\n".utf8)))
            try await server.reopen()
            #expect(try Self.uploads(server) == [kept + ".csv"])
            let source = try await server.test { client in
                try await client.call(.get, "/v1/data-sources/\(kept)", key: server.service)
            }
            #expect(source.json["columns"] == ["a", "b"])
        }
    }

    @Test("a CSV upload on a full disk is refused with 507 insufficient_storage, and nothing of it is kept")
    func fullDisk() async throws {
        var options = TestServer.Options()
        options.uploadFiles = FullDisk(capacity: 64 * 1024)
        try await TestServer.with(options: options) { server in
            let head = try server.store.head().position
            try await server.test { client in
                var csv = "email,amount\n"
                for i in 0..<10_000 { csv += "user\(i)@example.com,\(i)\n" }
                let refused = try await client.call(.post, "/v1/data-sources/csv?name=big", key: server.service, body: csv)
                #expect(refused.status.code == 507, "\(refused.json)")
                #expect(refused.json["error"]?["code"] == "insufficient_storage")
                let message = refused.json["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("disk for uploads is full"), "\(message)")
                #expect(message.contains("No space left on device"), "\(message)")
            }
            #expect(try Self.uploads(server) == [])
            #expect(try server.store.head().position == head)
        }
    }

    @Test("a CSV upload on a real full file system (a 1 MiB tmpfs) is refused with 507",
          .enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
    func fullTmpfs() async throws {
        try await TestServer.with { server in
            let uploads = server.directory + "/uploads"
            guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", uploads]) else {
                return // no tmpfs in this sandbox: the test with a failing disk above covers it
            }
            defer { _ = Self.run("/bin/umount", [uploads]) }
            try await server.test { client in
                let csv = "id\n" + String(repeating: "0123456789abcdef\n", count: 128 * 1024)
                let refused = try await client.call(.post, "/v1/data-sources/csv?name=big", key: server.service, body: csv)
                #expect(refused.status.code == 507, "\(refused.json)")
                #expect(refused.json["error"]?["code"] == "insufficient_storage")
            }
            #expect(try Self.uploads(server) == [])
        }
    }

    static func run(_ tool: String, _ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? Spawning.locked({ try process.run() })) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}

/// A disk with `capacity` bytes free for all uploads together: a write past it fails with
/// `ENOSPC`, as on a full disk; files are written to the real disk until then.
final class FullDisk: UploadFiles {
    let capacity: Int
    private let used = Mutex(0)

    init(capacity: Int) {
        self.capacity = capacity
    }

    func create(_ path: String) throws(UploadIOError) -> any UploadFile {
        File(disk: self, file: try DiskUploadFiles().create(path))
    }

    final class File: UploadFile {
        let disk: FullDisk
        let file: any UploadFile

        init(disk: FullDisk, file: any UploadFile) {
            self.disk = disk
            self.file = file
        }

        func write(_ bytes: [UInt8]) throws(UploadIOError) {
            let fits = disk.used.withLock { used in
                guard used + bytes.count <= disk.capacity else { return false }
                used += bytes.count
                return true
            }
            guard fits else { throw UploadIOError(errno: ENOSPC, operation: "write") }
            try file.write(bytes)
        }

        func synchronize() throws(UploadIOError) { try file.synchronize() }
        func close() throws(UploadIOError) { try file.close() }
    }
}
