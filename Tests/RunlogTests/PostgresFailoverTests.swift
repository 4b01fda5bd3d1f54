import EventLog
import Foundation
import PostgresStore
import RunlogJSON
import RunlogTestSupport
import Testing
import WorkflowModel

/// A primary and a synchronous streaming standby of its own (`tools/testing/postgres`), two
/// `runlog serve` nodes on both through a host list, and a failover under load.
@Suite("failover to a promoted standby (real processes)", .serialized, .enabled(if: TestPostgres.isEnabled))
struct PostgresFailoverTests {
    /// Runs `tools/testing/postgres` with `arguments`; its standard output. The output goes through
    /// files, not pipes: the server it starts keeps what descriptors it inherits open, so a pipe
    /// would never end.
    static func postgres(_ arguments: [String], in dir: TemporaryDirectory) async throws -> String {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tools/testing/postgres").path
        let (out, err) = (dir.path + "/script.out", dir.path + "/script.err")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bash", script] + arguments
        process.standardOutput = FileHandle(forWritingAtPath: out)
        process.standardError = FileHandle(forWritingAtPath: err)
        try Spawning.locked { try process.run() }
        // Reaped here: Foundation left the script a zombie that still counted as running (seen
        // once the script had started a server), and waitUntilExit never returned.
        var status: Int32 = 0
        while waitpid(process.processIdentifier, &status, WNOHANG) == 0 { try await Task.sleep(for: .milliseconds(20)) }
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else {
            let problems = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            throw TestFailure("tools/testing/postgres \(arguments.joined(separator: " ")) failed: \(problems)")
        }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The ids of the workflows created in the log at `url`.
    static func createdWorkflows(_ url: String) async throws -> Set<String> {
        var ids = Set<String>()
        try await TestPostgres.forEachEvent(in: url) { event in
            if case .workflowCreated(let created)? = try DomainEvent.decode(type: event.type, payload: event.payload) {
                ids.insert(created.workflowId)
            }
        }
        return ids
    }

    @Test("the primary crashes under load on two nodes and the standby is promoted: the nodes go on with it, and every acknowledged command is on the new primary, whose chain verifies",
          .timeLimit(.minutes(4)))
    func failover() async throws {
        let dir = TemporaryDirectory()
        // The servers run as the postgres user when the tests run as root: it must reach its directories.
        try FileManager.default.setAttributes([.posixPermissions: 0o711], ofItemAtPath: dir.path)
        let primary = try await Self.postgres(["start", dir.path + "/primary"], in: dir)
        do {
            let standby = try await Self.postgres(["standby", dir.path + "/primary", dir.path + "/standby"], in: dir)
            try await Self.failover(dir, primary: primary, standby: standby)
        } catch {
            await Self.stopServers(dir)
            throw error
        }
        await Self.stopServers(dir)
    }

    /// A node's log without its request lines and the head watch's reconnections.
    static func notable(_ log: String) -> String {
        log.split(separator: "\n").filter { !$0.contains("[RunlogHTTP]") && !$0.contains("head watch lost") }.suffix(20)
            .joined(separator: "\n")
    }

    static func stopServers(_ dir: TemporaryDirectory) async {
        _ = try? await postgres(["stop", dir.path + "/primary"], in: dir)
        _ = try? await postgres(["stop", dir.path + "/standby"], in: dir)
    }

    static func failover(_ dir: TemporaryDirectory, primary: String, standby: String) async throws {
        func endpoint(_ url: String) -> String { String(url.dropFirst("postgres://runlog@".count).prefix { $0 != "/" }) }
        let url = "postgres://runlog@\(endpoint(primary)),\(endpoint(standby))/runlog"

        let made = try await ChildProcess.run(["keys", "create", "--store", url, "--data-dir", dir.path + "/admin", "--role", "admin"])
        let key = try #require(made.stdout.first { $0.hasPrefix("rlk_") }, "\(made.stderr)")
        let a = try await ServerProcess.start(dir.path + "/a", ["--store", url])
        let b = try await ServerProcess.start(dir.path + "/b", ["--store", url])
        defer {
            a.child.kill()
            b.child.kill()
        }
        let (baseA, baseB) = (a.base, b.base)

        // Load on both nodes while the primary crashes and the standby is promoted.
        let running = RunningFlag()
        let loadA = Task { await ServerProcessTests.load(baseA, key: key, clients: 6, running: running) }
        let loadB = Task { await ServerProcessTests.load(baseB, key: key, clients: 6, running: running) }
        try await Task.sleep(for: .milliseconds(1500))
        _ = try await Self.postgres(["crash", dir.path + "/primary"], in: dir)
        _ = try await Self.postgres(["promote", dir.path + "/standby"], in: dir)
        try await Task.sleep(for: .seconds(1))
        running.stop()
        let during = await loadA.value + loadB.value
        #expect(during.count > 20)

        // Both nodes work on the new primary now.
        let after = RunningFlag()
        let againA = Task { await ServerProcessTests.load(baseA, key: key, clients: 2, running: after) }
        let againB = Task { await ServerProcessTests.load(baseB, key: key, clients: 2, running: after) }
        try await Task.sleep(for: .seconds(2))
        after.stop()
        let (afterA, afterB) = (await againA.value, await againB.value)
        #expect(!afterA.isEmpty, "node a answers commands after the failover: \(Self.notable(a.child.errorOutput))")
        #expect(!afterB.isEmpty, "node b answers commands after the failover: \(Self.notable(b.child.errorOutput))")

        let recorded = try await Self.createdWorkflows(standby)
        let missing = (during + afterA + afterB).filter { !recorded.contains($0) }
        #expect(missing.isEmpty, "\(missing.count) acknowledged workflows are missing on the new primary")
        _ = try await PostgresProcessTests.verifiedHead(["--store", standby])
        // A node reads what the other wrote after the failover.
        for id in afterA.prefix(5) {
            #expect(try await PostgresProcessTests.eventually {
                try await request(baseB, .GET, "/v1/workflows/\(id)", key: key).status == 200
            })
        }
    }
}
