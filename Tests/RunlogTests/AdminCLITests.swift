import RunlogJSON
import EventLog
import LMDBStore
import Foundation
import RunlogTestSupport
import Testing
import WorkflowModel
import Workflows

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The parsed JSON of a command's standard output: exactly one JSON document, nothing else.
func parsedJSON(_ result: (status: Int32, stdout: [String], stderr: String)) throws -> JSONValue {
    #expect(result.status == 0, "\(result.stderr)")
    return try JSONValue(parsing: result.stdout.joined(separator: "\n"))
}

/// A failure as the user sees it: a non-zero exit and exactly one line on standard error,
/// which starts with `Error: `; returns that line.
@discardableResult
func expectOneErrorLine(_ result: (status: Int32, stdout: [String], stderr: String),
                        sourceLocation: SourceLocation = #_sourceLocation) -> String {
    #expect(result.status != 0, "exit status 0: \(result.stdout)", sourceLocation: sourceLocation)
    let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    #expect(lines.count == 1, "\(lines)", sourceLocation: sourceLocation)
    #expect(lines.first?.hasPrefix("Error: ") == true, "\(lines)", sourceLocation: sourceLocation)
    return lines.first ?? ""
}

/// A usage error as ArgumentParser prints it: a non-zero exit, and standard error starting with
/// the one line that starts with `Error: `, then the usage; returns that line.
@discardableResult
func expectUsageError(_ result: (status: Int32, stdout: [String], stderr: String),
                      sourceLocation: SourceLocation = #_sourceLocation) -> String {
    #expect(result.status != 0, "exit status 0: \(result.stdout)", sourceLocation: sourceLocation)
    let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    #expect(lines.first?.hasPrefix("Error: ") == true, "\(lines)", sourceLocation: sourceLocation)
    #expect(lines.filter { $0.hasPrefix("Error: ") }.count == 1, "\(lines)", sourceLocation: sourceLocation)
    #expect(lines.contains { $0.hasPrefix("Usage: ") }, "\(lines)", sourceLocation: sourceLocation)
    return lines.first ?? ""
}

@Suite("runlog admin commands (real processes)", .serialized)
struct AdminCLITests {
    static let definition = #"""
        {"trigger": {"kind": "api", "schema": {"fields": [{"name": "ip", "type": "string", "required": true}]}},
         "routes": [{"name": "all", "steps": [{"step_uid": "STEP", "type": "approve"}]}]}
        """#

    static func write(_ text: String, _ path: String) throws -> String {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("workflows create, draft, publish, activate, deactivate; rollout stage, set, show, promote, end; runs list: through --server and offline")
    func workflowLifecycle() async throws {
        let dir = TemporaryDirectory()
        let key = try await ServerProcess.makeKey(dir.data)
        let server = try await ServerProcess.start(dir.data)
        defer { server.child.kill() }
        let s = ["--server", server.base, "--key", key]
        let d = ["--data-dir", dir.data]

        // create: JSON for scripts, text for people.
        let created = try parsedJSON(try await ChildProcess.run(["workflows", "create", "Screen inquiries", "--json"] + s))
        let id = try #require(created["id"]?.stringValue)
        #expect(created["name"]?.stringValue == "Screen inquiries")
        let other = try await ChildProcess.run(["workflows", "create", "Other"] + s)
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stdout.count == 1 && other.stdout[0].hasSuffix("created: Other, number 2"), "\(other.stdout)")
        let list = try await ChildProcess.run(["workflows", "list"] + s)
        #expect(list.stdout.count == 3 && list.stdout[2].contains(" -       -       -  "), "\(list.stdout)")

        // draft --file: If-Match from the current draft version; a stale --if-match is refused.
        let v1 = try Self.write(Self.definition.replacingOccurrences(of: "STEP", with: "a1"), dir.path + "/v1.json")
        let v2 = try Self.write(Self.definition.replacingOccurrences(of: "STEP", with: "a2"), dir.path + "/v2.json")
        let saved = try await ChildProcess.run(["workflows", "draft", id, "--file", v1] + s)
        #expect(saved.stdout == ["workflow \(id): draft version 1 saved"], "\(saved.stderr)")
        let stale = expectOneErrorLine(try await ChildProcess.run(["workflows", "draft", id, "--file", v2, "--if-match", "0"] + s))
        #expect(stale.contains("412"), "\(stale)")
        let bad = try Self.write(#"{"trigger": {"kind": "api", "schema": {"fields": []}}, "routes": [{"name": "r", "steps": [{"step_uid": "x", "type": "teleport"}]}]}"#,
                                 dir.path + "/bad.json")
        let invalid = expectOneErrorLine(try await ChildProcess.run(["workflows", "draft", id, "--file", bad] + s))
        #expect(invalid.contains("teleport") && invalid.contains("422") && invalid.contains("routes"), "\(invalid)")
        let notJSON = try Self.write("{\"trigger\": ", dir.path + "/broken.json")
        let broken = expectOneErrorLine(try await ChildProcess.run(["workflows", "draft", id, "--file", notJSON] + s))
        #expect(broken.contains("is not valid JSON"), "\(broken)")

        // From standard input, with the draft version it replaces given.
        let piped = try await ChildProcess.run(["workflows", "draft", id, "--file", "-", "--if-match", "1"] + s,
                                               input: Data(Self.definition.replacingOccurrences(of: "STEP", with: "a1").utf8))
        #expect(piped.stdout == ["workflow \(id): draft version 2 saved"], "\(piped.stderr)")
        let notObject = expectOneErrorLine(try await ChildProcess.run(["workflows", "draft", id, "--file", "-"] + s,
                                                                      input: Data("[1]".utf8)))
        #expect(notObject.contains("standard input is not a workflow definition"), "\(notObject)")

        // The draft reads back, offline and through the server.
        let draftOffline = try parsedJSON(try await ChildProcess.run(["workflows", "draft", id, "--json"] + d))
        let draftServer = try parsedJSON(try await ChildProcess.run(["workflows", "draft", id, "--json"] + s))
        #expect(draftOffline == draftServer)
        #expect(draftOffline["version"]?.intValue == 2)

        // publish, publish again, roll the second out.
        let published = try parsedJSON(try await ChildProcess.run(["workflows", "publish", id, "--activate",
                                                                  "--description", "first", "--json"] + s))
        #expect(published["status"]?.stringValue == "active")
        let savedV2 = try await ChildProcess.run(["workflows", "draft", id, "--file", v2] + s)
        #expect(savedV2.stdout == ["workflow \(id): draft version 3 saved"], "\(savedV2.stderr)")
        let second = try await ChildProcess.run(["workflows", "publish", id, "--description", "second"] + s)
        #expect(second.stdout == ["workflow \(id): version 2 published (published)"], "\(second.stderr)")
        let staged = try await ChildProcess.run(["rollout", "stage", id, "--version", "2", "--percentage", "25"] + s)
        #expect(staged.status == 0, "\(staged.stderr)")
        #expect(staged.stdout.first?.contains("rollout staged: ro_") == true, "\(staged.stdout)")
        #expect(staged.stdout.first?.contains("v2 (treatment) at 25% against v1 (control)") == true, "\(staged.stdout)")
        let set = try parsedJSON(try await ChildProcess.run(["rollout", "set", id, "--percentage", "50", "--json"] + s))
        #expect(set["rollout"]?["percentage"]?.numericValue == 50)

        // Reads agree offline (while the server runs) and through the server.
        for command in [["workflows", "show", id], ["rollout", "show", id], ["workflows", "list"]] {
            let offline = try parsedJSON(try await ChildProcess.run(command + ["--json"] + d))
            let online = try parsedJSON(try await ChildProcess.run(command + ["--json"] + s))
            #expect(offline == online, "\(command)")
        }
        let shown = try await ChildProcess.run(["workflows", "show", id] + d)
        #expect(shown.stdout.contains("active     v1"), "\(shown.stdout)")
        #expect(shown.stdout.contains { $0.hasPrefix("rollout    ro_") && $0.contains("at 50%") }, "\(shown.stdout)")
        let rollouts = try await ChildProcess.run(["rollout", "show", id] + s)
        #expect(rollouts.stdout.first?.contains("active: v2 against v1 at 50%") == true, "\(rollouts.stdout)")
        #expect(rollouts.stdout.last?.contains("25% (") == true && rollouts.stdout.last?.contains("→ 50% (") == true,
                "\(rollouts.stdout)")

        let promoted = try await ChildProcess.run(["rollout", "promote", id] + s)
        #expect(promoted.stdout == ["workflow \(id): rollout promoted; v2 is active"], "\(promoted.stderr)")
        let noRollout = expectOneErrorLine(try await ChildProcess.run(["rollout", "end", id] + s))
        #expect(noRollout.contains(id), "\(noRollout)")
        let deactivated = try await ChildProcess.run(["workflows", "deactivate", id] + s)
        #expect(deactivated.stdout == ["workflow \(id): deactivated; no version is active"], "\(deactivated.stderr)")
        let activated = try await ChildProcess.run(["workflows", "activate", id, "1"] + s)
        #expect(activated.stdout == ["workflow \(id): v1 is active"], "\(activated.stderr)")
        // A second rollout, ended: v1 stays active.
        _ = try await ChildProcess.run(["rollout", "stage", id, "--version", "2", "--percentage", "10"] + s)
        let ended = try await ChildProcess.run(["rollout", "end", id] + s)
        #expect(ended.stdout == ["workflow \(id): rollout ended; v1 is active"], "\(ended.stderr)")
        let history = try await ChildProcess.run(["rollout", "show", id] + d)
        #expect(history.stdout.contains { $0.contains("ended: v2 against v1") }, "\(history.stdout)")
        #expect(history.stdout.contains { $0.contains("promoted: v2 against v1") }, "\(history.stdout)")

        // runs list with the API's filters, both ways.
        var runIds: [String] = []
        for i in 0..<3 {
            let run = try await request(server.base, .POST, "/v1/workflows/\(id)/runs", key: key,
                                        json: ["parameters": ["ip": .string("10.0.0.\(i)")]])
            runIds.append(try #require(run.json["id"]?.stringValue))
        }
        var completed: JSONValue?
        for _ in 0..<200 {
            let page = try parsedJSON(try await ChildProcess.run(["runs", "list", id, "--status", "completed", "--json"] + s))
            if (page["runs"]?.arrayValue)?.count == 3 { completed = page; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let all = try #require(completed)
        #expect(try parsedJSON(try await ChildProcess.run(["runs", "list", id, "--status", "completed", "--json"] + d)) == all)
        let firstPage = try parsedJSON(try await ChildProcess.run(["runs", "list", id, "--limit", "2", "--json"] + d))
        #expect(firstPage["next_after"]?.stringValue == runIds[1])
        let paged = try await ChildProcess.run(["runs", "list", id, "--limit", "2", "--after", runIds[1]] + s)
        #expect(paged.stdout.count == 2 && paged.stdout[1].hasPrefix(runIds[2]), "\(paged.stdout)")
        let listed = try await ChildProcess.run(["runs", "list", id, "--version", "1", "--arm", "none"] + d)
        #expect(listed.stdout.count == 4, "\(listed.stdout)")
        #expect(listed.stdout.dropFirst().allSatisfy { $0.contains("completed") && $0.contains("approved") }, "\(listed.stdout)")
        #expect(try await ChildProcess.run(["runs", "list", id, "--status", "failed"] + s).stdout.count == 1)
        let badStatus = expectUsageError(try await ChildProcess.run(["runs", "list", id, "--status", "done"] + d))
        #expect(badStatus.contains("--status done"), "\(badStatus)")
        let run = try await ChildProcess.run(["runs", "show", runIds[0]] + s)
        #expect(run.stdout.contains("status     completed, approved"), "\(run.stdout)")
        #expect(try parsedJSON(try await ChildProcess.run(["runs", "show", runIds[0], "--json"] + s))
                == (try parsedJSON(try await ChildProcess.run(["runs", "show", runIds[0], "--json"] + d))))

        // Errors: one line, the same way everywhere.
        let unknown = expectOneErrorLine(try await ChildProcess.run(["workflows", "show", "wf_nope"] + s))
        #expect(unknown.contains("workflow wf_nope does not exist") && unknown.contains("404"), "\(unknown)")
        let unknownOffline = expectOneErrorLine(try await ChildProcess.run(["workflows", "show", "wf_nope"] + d))
        #expect(unknownOffline == "Error: workflow wf_nope does not exist")
        let wrongKey = expectOneErrorLine(try await ChildProcess.run(
            ["workflows", "create", "x", "--server", server.base, "--key", "rlk_wrong"]))
        #expect(wrongKey.contains("401"), "\(wrongKey)")
        let noServer = expectOneErrorLine(try await ChildProcess.run(["workflows", "create", "x"] + d))
        #expect(noServer.contains("--server URL --key KEY"), "\(noServer)")
        let noServerRollout = expectOneErrorLine(try await ChildProcess.run(["rollout", "promote", id] + d))
        #expect(noServerRollout.contains("runlog rollout promote writes through the server"), "\(noServerRollout)")
        let usage = expectUsageError(try await ChildProcess.run(["workflows", "show"] + d))
        #expect(usage.contains("<workflow>"), "\(usage)")
    }

    @Test("imports list, show, errored-rows, cancel, resume: through --server and offline")
    func imports() async throws {
        let dir = TemporaryDirectory()
        let key = try await ServerProcess.makeKey(dir.data)
        var server = try await ServerProcess.start(dir.data)
        let s = { ["--server", server.base, "--key", key] }
        let d = ["--data-dir", dir.data]
        let wf = try await ImporterProcessTests.activeWorkflow(server.base, key)
        let file = try Self.write(ImporterProcessTests.csv(rows: 20) + "10.0.0.99,extra\n", dir.path + "/ips.csv")
        let imported = try await ChildProcess.run(["import", file, "--workflow", wf] + s())
        let runId = try #require(imported.stdout.first.flatMap { $0.split(separator: " ").dropFirst(2).first }
            .map { String($0.dropLast()) }, "\(imported.stdout)")

        let importers = try parsedJSON(try await ChildProcess.run(["imports", "list", "--json"] + s()))
        let importer = try #require((importers["importers"]?.arrayValue)?.first?["id"]?.stringValue)
        #expect(try parsedJSON(try await ChildProcess.run(["imports", "list", "--json"] + d)) == importers)
        let table = try await ChildProcess.run(["imports", "list"] + d)
        #expect(table.stdout.count == 2 && table.stdout[1].hasPrefix(importer) && table.stdout[1].hasSuffix("ips.csv"),
                "\(table.stdout)")
        let runs = try await ChildProcess.run(["imports", "list", importer] + s())
        #expect(runs.stdout.count == 2 && runs.stdout[1].hasPrefix(runId) && runs.stdout[1].contains("completed"),
                "\(runs.stdout)")
        #expect(try parsedJSON(try await ChildProcess.run(["imports", "list", importer, "--json"] + s()))
                == (try parsedJSON(try await ChildProcess.run(["imports", "list", importer, "--json"] + d))))

        let shown = try await ChildProcess.run(["imports", "show", runId] + d)
        #expect(shown.stdout.first == "importer run \(runId): completed", "\(shown.stdout)")
        #expect(shown.stdout.contains("rows read 21, runs created 20, skipped 0, errored 1"), "\(shown.stdout)")
        #expect(shown.stdout.contains("  1 × the row has 2 fields; the header has 1"), "\(shown.stdout)")
        #expect(try parsedJSON(try await ChildProcess.run(["imports", "show", runId, "--json"] + s()))
                == (try parsedJSON(try await ChildProcess.run(["imports", "show", runId, "--json"] + d))))

        let csv = try await ChildProcess.run(["imports", "errored-rows", runId] + s())
        #expect(csv.stdout.map { $0.replacingOccurrences(of: "\r", with: "") }
                == ["ip,row,field,value,error", "10.0.0.99,21,,,the row has 2 fields; the header has 1"], "\(csv.stdout)")
        #expect(try await ChildProcess.run(["imports", "errored-rows", runId] + d).stdout == csv.stdout)
        let rows = try parsedJSON(try await ChildProcess.run(["imports", "errored-rows", runId, "--json"] + s()))
        #expect(rows.arrayValue?.first?["row"]?.intValue == 21, "\(rows)")
        #expect(rows.arrayValue?.first?["ip"]?.stringValue == "10.0.0.99", "\(rows)")

        let notRunning = expectOneErrorLine(try await ChildProcess.run(["imports", "cancel", runId] + s()))
        #expect(notRunning.contains("is completed, not running") && notRunning.contains("409"), "\(notRunning)")
        let unknown = expectOneErrorLine(try await ChildProcess.run(["imports", "show", "irun_nope"] + d))
        #expect(unknown == "Error: importer run irun_nope does not exist")

        // cancel: a large import, cancelled while it runs.
        let source = try await uploadCSV(server.base, key, ImporterProcessTests.csv(rows: 100_000))
        let big = try await request(server.base, .POST, "/v1/importers", key: key, json: [
            "name": "big", "data_source_id": .string(source), "workflow_id": .string(wf), "mapping": ["columns": ["ip": "ip"]],
        ])
        let bigImporter = try #require(big.json["id"]?.stringValue)
        let started = try await request(server.base, .POST, "/v1/importers/\(bigImporter)/runs", key: key)
        let bigRun = try #require(started.json["id"]?.stringValue)
        let cancelled = try await ChildProcess.run(["imports", "cancel", bigRun] + s())
        #expect(cancelled.status == 0, "\(cancelled.stderr)")
        #expect(cancelled.stdout.first == "importer run \(bigRun): cancelled (cancelled)", "\(cancelled.stdout)")

        // resume: a run stopped by the daily quota.
        let used = try #require(try await request(server.base, .GET, "/v1/quota", key: key).json["used"]?.intValue)
        server.child.kill(SIGTERM)
        _ = await server.child.wait()
        server = try await ServerProcess.start(dir.data, ["--daily-run-quota", String(used + 5)])
        defer { server.child.kill() }
        let stopped = try await ChildProcess.run(["import", file, "--workflow", wf] + s())
        let stoppedRun = try #require(stopped.stdout.first.flatMap { $0.split(separator: " ").dropFirst(2).first }
            .map { String($0.dropLast()) }, "\(stopped.stdout)")
        #expect(stopped.stdout.first?.hasSuffix("stopped (quota_exceeded)") == true || stopped.stdout.first?.contains("stopped") == true,
                "\(stopped.stdout)")
        let resumed = try parsedJSON(try await ChildProcess.run(["imports", "resume", stoppedRun, "--json"] + s()))
        #expect(resumed["id"]?.stringValue == stoppedRun)
        #expect(resumed["status"]?.stringValue == "running")
        let writeOffline = expectOneErrorLine(try await ChildProcess.run(["imports", "resume", stoppedRun] + d))
        #expect(writeOffline.contains("--server"), "\(writeOffline)")
    }

    @Test("--server: an unreachable endpoint fails within seconds, naming the URL and the cause; --version")
    func unreachable() async throws {
        let port = try closedPort()
        let url = "http://127.0.0.1:\(port)"
        let started = ContinuousClock.now
        let refused = expectOneErrorLine(try await ChildProcess.run(["workflows", "list", "--server", url, "--key", "k",
                                                                     "--connect-timeout", "60"]))
        // Refused at once, not after the connect timeout.
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(refused.hasPrefix("Error: cannot connect to \(url) (connection refused"), "\(refused)")

        let writeStarted = ContinuousClock.now
        let write = expectOneErrorLine(try await ChildProcess.run(["workflows", "create", "x", "--server", url + "/",
                                                                   "--key", "k", "--connect-timeout", "2"]))
        #expect(ContinuousClock.now - writeStarted < .seconds(15))
        #expect(write.contains("cannot connect to \(url) ("), "\(write)")

        let dnsStarted = ContinuousClock.now
        let dns = expectOneErrorLine(try await ChildProcess.run(["runs", "list", "wf_1", "--server",
                                                                 "http://no-such-host.invalid:8080", "--key", "k",
                                                                 "--connect-timeout", "3"]))
        #expect(ContinuousClock.now - dnsStarted < .seconds(15))
        #expect(dns.contains("cannot connect to http://no-such-host.invalid:8080 ("), "\(dns)")

        let notURL = expectOneErrorLine(try await ChildProcess.run(["workflows", "list", "--server", "localhost:8080", "--key", "k"]))
        #expect(notURL.contains("is not a URL"), "\(notURL)")
        let noKey = try ChildProcess(["workflows", "list", "--server", url],
                                     environment: ProcessInfo.processInfo.environment.filter { $0.key != "RUNLOG_KEY" })
        #expect(await noKey.wait() != 0)
        #expect(noKey.errorOutput == "Error: --server needs an API key: --key KEY or $RUNLOG_KEY\n")
        let zero = expectUsageError(try await ChildProcess.run(["workflows", "list", "--server", url, "--key", "k",
                                                                "--connect-timeout", "0"]))
        #expect(zero.contains("--connect-timeout"), "\(zero)")

        let bucket = try parsedJSON(try await ChildProcess.run(["rollout", "bucket", "--seed", "b", "--key", "a",
                                                                "--percentage", "66.51", "--json"]))
        #expect(bucket["bucket"] == 0.665 && bucket["arm"] == "treatment", "\(bucket)")

        // $RUNLOG_SERVER is the default; an explicit --data-dir reads the data directory instead.
        let dir = TemporaryDirectory()
        #expect(try await ChildProcess.run(["init", "--data-dir", dir.data]).status == 0)
        var environment = ProcessInfo.processInfo.environment
        environment["RUNLOG_SERVER"] = url
        environment["RUNLOG_KEY"] = "k"
        let viaEnvironment = try ChildProcess(["workflows", "list"], environment: environment)
        #expect(await viaEnvironment.wait() != 0)
        #expect(viaEnvironment.errorOutput.contains("cannot connect to \(url)"), "\(viaEnvironment.errorOutput)")
        let explicit = try ChildProcess(["workflows", "list", "--data-dir", dir.data], environment: environment)
        #expect(await explicit.wait() == 0, "\(explicit.errorOutput)")
        #expect(explicit.output.count == 1 && explicit.output[0].hasPrefix("ID "), "\(explicit.output)")

        let version = try await ChildProcess.run(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.count == 1 && version.stdout[0].wholeMatch(of: /\d+\.\d+\.\d+/) != nil, "\(version.stdout)")
    }
}
