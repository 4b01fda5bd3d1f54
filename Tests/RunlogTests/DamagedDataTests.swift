import RunlogJSON
import AsyncHTTPClient
import EventLog
import LMDBStore
import EventStoreConformance
import Foundation
import NIOCore
import RunlogTestSupport
import Testing
import WorkflowModel
import Workflows

/// The server's edges on disk, with real child processes: private files, damaged data, the
/// start-up check of the chain, strict JSON payloads and live backups (issue 22).
@Suite("Data directory edges (real processes)", .serialized)
struct DamagedDataTests {
    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    /// A data directory holding `count` events; event i's payload holds `marker-i-end`.
    static func makeLog(_ directory: String, count: Int) async throws {
        let store = try LMDBEventStore(directory: directory, options: .init(mapSize: 64 << 20))
        var i = 0
        while i < count {
            let events = (i..<min(count, i + 25)).map { n in
                let pad = String(repeating: "x", count: 120)
                return event("t", "{\"n\":\(n + 1),\"m\":\"marker-\(n + 1)-end\",\"pad\":\"\(pad)\"}")
            }
            try await store.append(to: "s-\(i % 7)", events)
            i += events.count
        }
        store.close()
    }

    /// How a tool ended.
    struct Outcome: CustomStringConvertible {
        var status: Int32
        var signaled: Bool
        var started = false
        var stdout: [String]
        var stderr: String
        var description: String {
            "status \(status)\(signaled ? " (signal)" : "")\(started ? " (server started)" : ""); "
                + "stdout \(stdout.prefix(3)); stderr \(stderr.prefix(400))"
        }
    }

    /// Runs `runlog` to completion; a server that starts is stopped and reported as `started`.
    static func run(_ arguments: [String]) async throws -> Outcome {
        let child = try ChildProcess(arguments)
        if arguments.first == "serve" {
            let listening: Void? = try? await child.waitFor(timeout: .seconds(60)) { lines in
                lines.contains { $0.hasPrefix("listening on") }
            }
            if listening != nil {
                child.kill(SIGTERM)
                let status = await child.wait()
                return Outcome(status: status, signaled: false, started: true, stdout: child.output,
                               stderr: child.errorOutput)
            }
        }
        let status = await child.wait()
        return Outcome(status: status, signaled: child.process.terminationReason == .uncaughtSignal,
                       stdout: child.output, stderr: child.errorOutput)
    }

    // MARK: Item 12: permissions

    @Test("serve refuses a data directory group or others can read, saying to chmod 700 it")
    func serveRefusesOpenDirectory() async throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.data, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        let refused = try await Self.run(["serve", "--data-dir", dir.data, "--port", "0"])
        #expect(!refused.started && refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("chmod 700 \(dir.data)"), "\(refused)")
        #expect(refused.stderr.contains("mode 755"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: dir.data + "/data.mdb"))
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir.data)
        let started = try await Self.run(["serve", "--data-dir", dir.data, "--port", "0"])
        #expect(started.started, "\(started)")
    }

    @Test("a fresh data directory, its files, uploads/ and an uploaded file are private (0700 and 0600)")
    func privateFiles() async throws {
        let dir = TemporaryDirectory()
        let key = try await ServerProcess.makeKey(dir.data)
        let server = try await ServerProcess.start(dir.data)
        var upload = HTTPClientRequest(url: server.base + "/v1/data-sources/csv?name=people")
        upload.method = .POST
        upload.headers.add(name: "Authorization", value: "Bearer \(key)")
        upload.headers.add(name: "Content-Type", value: "text/csv")
        upload.body = .bytes(ByteBuffer(string: "email\na@example.com\n"))
        let response = try await HTTPClient.shared.execute(upload, timeout: .seconds(30))
        #expect(response.status.code == 201)
        server.child.kill(SIGTERM)
        _ = await server.child.wait()

        #expect(try Self.mode(dir.data) == 0o700)
        #expect(try Self.mode(dir.data + "/uploads") == 0o700)
        for name in ["data.mdb", "lock.mdb", "writer.lock", "secret.key"] {
            #expect(try Self.mode(dir.data + "/" + name) == 0o600, "\(name)")
        }
        let uploaded = try FileManager.default.contentsOfDirectory(atPath: dir.data + "/uploads")
        #expect(!uploaded.isEmpty)
        for name in uploaded { #expect(try Self.mode(dir.data + "/uploads/" + name) == 0o600, "\(name)") }
    }

    // MARK: Item 13: damaged data files

    enum Damage: String, CaseIterable, Sendable {
        case flip, flipHeader, zeroLeaf, zeroBranch, zeroMeta, truncate, empty, missing
    }

    /// Damages the copy's data.mdb.
    static func damage(_ file: String, _ kind: Damage) throws {
        let url = URL(fileURLWithPath: file)
        var bytes = try Data(contentsOf: url)
        let pageSize = Int(bytes[40]) | Int(bytes[41]) << 8 | Int(bytes[42]) << 16
        func zeroPages(where condition: (Int) -> Bool) -> Int {
            var zeroed = 0
            for page in 2..<(bytes.count / pageSize) where condition(page * pageSize) {
                bytes.replaceSubrange(page * pageSize..<(page + 1) * pageSize, with: Data(count: pageSize))
                zeroed += 1
            }
            return zeroed
        }
        func holds(_ marker: String) -> (Int) -> Bool {
            { start in bytes[start..<start + pageSize].range(of: Data(marker.utf8)) != nil }
        }
        switch kind {
        case .flip:
            // One bit of event 150's payload, in every copy of its page (one is the live one).
            var from = bytes.startIndex
            while let range = bytes.range(of: Data("marker-150-end".utf8), in: from..<bytes.endIndex) {
                bytes[range.lowerBound] ^= 0x04
                from = range.upperBound
            }
        case .flipHeader:
            // One bit of the entry count (the lower bound) of the pages holding event 150.
            var flipped = 0
            for page in 2..<(bytes.count / pageSize) where holds("marker-150-end")(page * pageSize) {
                bytes[page * pageSize + 12] ^= 0x40
                flipped += 1
            }
            #expect(flipped >= 1)
        case .zeroLeaf:
            #expect(zeroPages(where: holds("marker-150-end")) >= 1)
        case .zeroBranch:
            #expect(zeroPages(where: { start in bytes[start + 10] == 0x01 && bytes[start + 11] == 0 }) >= 1)
        case .zeroMeta:
            bytes.replaceSubrange(0..<pageSize, with: Data(count: pageSize))
        case .truncate:
            bytes = bytes.prefix(bytes.count / 2 / pageSize * pageSize)
        case .empty:
            bytes = Data()
        case .missing:
            try FileManager.default.removeItem(at: url)
            return
        }
        try bytes.write(to: url)
    }

    @Test("every tool ends a damaged data directory with exit 1 and a message, never a signal",
          arguments: Damage.allCases)
    func damagedData(_ kind: Damage) async throws {
        let dir = TemporaryDirectory()
        let source = dir.path + "/source"
        try await Self.makeLog(source, count: 400)
        let data = dir.path + "/damaged"
        try FileManager.default.copyItem(atPath: source, toPath: data)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: data)
        try Self.damage(data + "/data.mdb", kind)
        let file = data + "/data.mdb"

        let tools: [(name: String, arguments: [String])] = [
            ("log verify", ["log", "verify", "--data-dir", data]),
            ("log read", ["log", "read", "--data-dir", data]),
            ("log stats", ["log", "stats", "--data-dir", data]),
            ("backup", ["backup", "--data-dir", data, dir.path + "/backup-\(UUID().uuidString.prefix(6))"]),
            ("log append", ["log", "append", "--data-dir", data, "--stream", "x", "--type", "t", "--payload", "{}"]),
            ("serve", ["serve", "--data-dir", data, "--port", "0"]),
        ]
        for tool in tools {
            let outcome = try await Self.run(tool.arguments)
            #expect(!outcome.signaled, "\(kind) \(tool.name): \(outcome)")
            #expect(!outcome.started, "\(kind) \(tool.name): \(outcome)")
            // A flipped payload byte is seen by what checks hashes; reading and counting may succeed.
            if kind == .flip && (tool.name == "log read" || tool.name == "log stats") {
                #expect(outcome.status == 0 || outcome.status == 1, "\(kind) \(tool.name): \(outcome)")
                continue
            }
            #expect(outcome.status == 1, "\(kind) \(tool.name): \(outcome)")
            let message = outcome.stderr + outcome.stdout.joined(separator: "\n")
            switch kind {
            case .flip:
                #expect(message.contains("position 150"), "\(kind) \(tool.name): \(outcome)")
            case .missing:
                #expect(message.contains(data), "\(kind) \(tool.name): \(outcome)")
            default:
                #expect(message.contains(file), "\(kind) \(tool.name): \(outcome)")
            }
        }
        // The tools changed nothing: the file is still as damaged (not replaced by a new log).
        if kind == .empty {
            #expect(try Data(contentsOf: URL(fileURLWithPath: file)).isEmpty)
        }
        if kind == .missing {
            #expect(!FileManager.default.fileExists(atPath: file))
        }
    }

    // MARK: Item 14: the start-up check of the chain

    @Test("serve checks the last --verify-tail events and refuses a broken chain unless --allow-broken-chain")
    func serveChecksTheTail() async throws {
        let dir = TemporaryDirectory()
        try await Self.makeLog(dir.data, count: 200)
        try Self.damage(dir.data + "/data.mdb", .flip)

        let refused = try await Self.run(["serve", "--data-dir", dir.data, "--port", "0"])
        #expect(!refused.started && refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("does not verify at position 150"), "\(refused)")
        #expect(refused.stderr.contains("--allow-broken-chain"), "\(refused)")
        // A tail of 20 events does not reach position 150.
        let short = try await Self.run(["serve", "--data-dir", dir.data, "--port", "0", "--verify-tail", "20"])
        #expect(short.started, "\(short)")
        let allowed = try await Self.run(["serve", "--data-dir", dir.data, "--port", "0", "--allow-broken-chain"])
        #expect(allowed.started, "\(allowed)")
        #expect(allowed.stderr.contains("--allow-broken-chain"), "\(allowed)")
    }

    // MARK: Item 15: strict JSON payloads

    @Test("log append checks --payload with the strict parser: no trailing comma, no byte order mark")
    func strictPayload() async throws {
        let dir = TemporaryDirectory()
        let d = ["--data-dir", dir.data, "--stream", "s", "--type", "t"]
        for bad in ["{\"a\":1,}", "[1,2,]", "\u{FEFF}{\"a\":1}"] {
            let r = try await ChildProcess.run(["log", "append"] + d + ["--payload", bad])
            #expect(r.status != 0, "\(bad) was accepted")
            #expect(r.stderr.contains("--payload"), "\(r.stderr)")
            #expect(r.stderr.contains("RFC 8259"), "\(r.stderr)")
        }
        let good = try await ChildProcess.run(["log", "append"] + d + ["--payload", "{\"a\": [1, 2]}"])
        #expect(good.status == 0, "\(good.stderr)")
        let read = try await ChildProcess.run(["log", "read", "--data-dir", dir.data])
        #expect(read.stdout.count == 1)
    }

    @Test("log read prints strict JSON even for a lenient payload stored before the check")
    func lenientPayloadPrintsStrictJSON() async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try LMDBEventStore(directory: dir.data, options: .init(mapSize: 64 << 20))
            for payload in ["{\"a\":1,}", "[1,2 , ]", "\u{FEFF}{\"b\":2}", "{\"c\":\"x,]\"}"] {
                try await store.append(to: "s", [NewEvent(type: "t", payload: Array(payload.utf8))])
            }
            store.close()
        }
        let read = try await ChildProcess.run(["log", "read", "--data-dir", dir.data])
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdout.count == 4)
        let payloads: [JSONValue] = read.stdout.map { line in (try? JSONValue(parsing: line))?["payload"] ?? .null }
        let expected: [JSONValue] = [["a": 1], [1, 2], ["b": 2], ["c": "x,]"]]
        #expect(payloads == expected, "\(read.stdout)")
    }

    // MARK: Item 20: backup

    @Test("runlog backup copies a live data directory while a writer appends, and the copy verifies")
    func backupWhileWriting() async throws {
        let dir = TemporaryDirectory()
        let writer = try ChildProcess(["dev", "append-loop", "--data-dir", dir.data, "--appenders", "4"])
        defer { writer.kill() }
        try await writer.waitFor { $0.count >= 300 }
        try FileManager.default.createDirectory(atPath: dir.data + "/uploads", withIntermediateDirectories: true)
        try Data("email\na@example.com\n".utf8).write(to: URL(fileURLWithPath: dir.data + "/uploads/ds_1.csv"))

        let destination = dir.path + "/backups/first"
        let backup = try await ChildProcess.run(["backup", "--data-dir", dir.data, destination])
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stdout.first?.contains("the copy verifies") == true, "\(backup.stdout)")
        #expect(writer.process.isRunning)
        writer.kill()
        _ = await writer.wait()

        #expect(try Self.mode(destination) == 0o700)
        #expect(try Self.mode(destination + "/data.mdb") == 0o600)
        #expect(try Self.mode(destination + "/uploads/ds_1.csv") == 0o600)
        let verify = try await ChildProcess.run(["log", "verify", "--data-dir", destination])
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
        let count = verify.stdout.first.flatMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } }
        #expect((count ?? 0) >= 300, "\(verify.stdout)")

        let again = try await ChildProcess.run(["backup", "--data-dir", dir.data, destination])
        #expect(again.status == 1)
        #expect(again.stderr.contains(destination), "\(again.stderr)")
    }
}
