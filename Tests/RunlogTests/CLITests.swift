import Foundation
import RunlogTestSupport
import Testing

/// The `runlog` command as a user runs it: a real child process.
@Suite("runlog command")
struct CLITests {
    @Test("log append, read with filters, stats, verify")
    func logCommands() async throws {
        let dir = TemporaryDirectory()
        let d = ["--data-dir", dir.data]
        #expect(try await ChildProcess.run(["init"] + d).status == 0)
        let first = try await ChildProcess.run(["log", "append"] + d + ["--stream", "order-1", "--type", "order.placed",
                                                                      "--payload", "{\"total\": 12.5}", "--actor", "ops"])
        #expect(first.status == 0, "\(first.stderr)")
        let envelope = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout[0].utf8)) as? [String: Any])
        #expect(envelope["position"] as? Int == 1)
        #expect(envelope["version"] as? Int == 1)
        #expect((envelope["metadata"] as? [String: String])?["actor"] == "ops")
        #expect((envelope["payload"] as? [String: Double])?["total"] == 12.5)
        let id = try #require(envelope["id"] as? String)

        // Re-appending the same id changes nothing and prints the stored event.
        let again = try await ChildProcess.run(["log", "append"] + d + ["--stream", "order-1", "--type", "order.placed",
                                                                      "--payload", "{\"total\": 12.5}", "--id", id])
        #expect(again.stdout == first.stdout)

        _ = try await ChildProcess.run(["log", "append"] + d + ["--stream", "order-1", "--type", "order.paid",
                                                              "--payload", "{}", "--expected-version", "1"])
        _ = try await ChildProcess.run(["log", "append"] + d + ["--stream", "user-1", "--type", "user.seen", "--payload", "[1,2]"])

        let conflict = try await ChildProcess.run(["log", "append"] + d + ["--stream", "order-1", "--type", "x",
                                                                         "--payload", "{}", "--expected-version", "7"])
        #expect(conflict.status != 0)
        #expect(conflict.stderr.contains("stream \"order-1\" is at version 2, expected 7"))
        let badJSON = try await ChildProcess.run(["log", "append"] + d + ["--stream", "s", "--type", "x", "--payload", "{nope"])
        #expect(badJSON.status != 0)
        #expect(badJSON.stderr.contains("--payload"))

        func positions(_ args: [String]) async throws -> [Int] {
            let r = try await ChildProcess.run(["log", "read"] + d + args)
            #expect(r.status == 0, "\(r.stderr)")
            return try r.stdout.map { line in
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                return try #require(object["position"] as? Int)
            }
        }
        #expect(try await positions([]) == [1, 2, 3])
        #expect(try await positions(["--backward", "--limit", "2"]) == [3, 2])
        #expect(try await positions(["--type", "order.paid"]) == [2])
        #expect(try await positions(["--stream-prefix", "user-"]) == [3])
        #expect(try await positions(["--stream", "order-1", "--from", "2"]) == [2])
        #expect(try await positions(["--from", "2"]) == [2, 3])

        let stats = try await ChildProcess.run(["log", "stats", "--json"] + d)
        let s = try #require(try JSONSerialization.jsonObject(with: Data(stats.stdout[0].utf8)) as? [String: Any])
        #expect(s["events"] as? Int == 3)
        #expect(s["streams"] as? Int == 2)
        #expect(s["headPosition"] as? Int == 3)

        let verify = try await ChildProcess.run(["log", "verify"] + d)
        #expect(verify.status == 0)
        #expect(verify.stdout.first?.hasPrefix("intact: 3 events, head hash ") == true)
    }

    @Test("RUNLOG_DATA_DIR is the default data directory, and a missing one is a clear error")
    func dataDirFromEnvironment() async throws {
        let dir = TemporaryDirectory()
        var environment = ProcessInfo.processInfo.environment
        environment["RUNLOG_DATA_DIR"] = dir.data
        let child = try ChildProcess(["log", "read"], environment: environment)
        #expect(await child.wait() != 0)
        #expect(child.errorOutput.contains("does not exist"))
        let initialise = try ChildProcess(["init"], environment: environment)
        #expect(await initialise.wait() == 0)
        #expect(FileManager.default.fileExists(atPath: dir.data + "/data.mdb"))
    }

    @Test("condition test prints true or false, exit 2 on a malformed condition")
    func conditionTest() async throws {
        let yes = try await ChildProcess.run(["condition", "test", #"{"score": {"$gt": 80}}"#, #"{"score": 82}"#])
        #expect(yes.status == 0)
        #expect(yes.stdout == ["true"])
        let no = try await ChildProcess.run(["condition", "test", #"{"tags": "vip"}"#, #"{"tags": ["beta"]}"#])
        #expect(no.stdout == ["false"])
        let listed = try await ChildProcess.run(["condition", "test", #"{"ip": {"$inList": "blocked"}}"#,
                                                 #"{"ip": "10.0.0.1"}"#, "--list", #"blocked=["10.0.0.1"]"#])
        #expect(listed.stdout == ["true"])
        let bad = try await ChildProcess.run(["condition", "test", #"{"score": {"$gtx": 1}}"#, "{}"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("\"score\""))
        #expect(bad.stderr.contains("$gtx"))
        let badDocument = try await ChildProcess.run(["condition", "test", "{}", "{oops"])
        #expect(badDocument.status == 2)
    }

    @Test("serve refuses out-of-range settings before opening anything, naming the option")
    func serveSettings() async throws {
        for (arguments, option) in [(["--shared-workers", "-1"], "--shared-workers"),
                                    (["--shared-workers", "1000"], "--shared-workers"),
                                    (["--batch-yield-ms", "-1"], "--batch-yield-ms"),
                                    (["--batch-yield-ms", "60001"], "--batch-yield-ms"),
                                    (["--max-batch-profiles", "0"], "--max-batch-profiles"),
                                    (["--idempotency-hours", "-1"], "--idempotency-hours"),
                                    (["--s3-connect-timeout", "0"], "--s3-connect-timeout"),
                                    (["--s3-connect-timeout", "601"], "--s3-connect-timeout"),
                                    (["--s3-connect-timeout", "nan"], "--s3-connect-timeout")] {
            let result = try await ChildProcess.run(["serve", "--data-dir", "/nonexistent/runlog-never"] + arguments)
            #expect(result.status != 0)
            #expect(result.stderr.contains(option), "\(result.stderr)")
        }
    }

    @Test("rollout bucket prints GrowthBook's v2 bucket")
    func rolloutBucket() async throws {
        let r = try await ChildProcess.run(["rollout", "bucket", "--seed", "rollout-1", "--key", "user-42"])
        #expect(r.stdout == ["0.2919"])
        let arm = try await ChildProcess.run(["rollout", "bucket", "--seed", "b", "--key", "a", "--percentage", "66.5"])
        #expect(arm.stdout == ["0.665 control"])
        let arm2 = try await ChildProcess.run(["rollout", "bucket", "--seed", "b", "--key", "a", "--percentage", "66.51"])
        #expect(arm2.stdout == ["0.665 treatment"])
        let bad = try await ChildProcess.run(["rollout", "bucket", "--seed", "b", "--key", "a", "--percentage", "101"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("between 0 and 100"))
    }
}

@Suite("runlog log append guards")
struct AppendGuardTests {
    @Test("the workflow engine's event types cannot be appended by hand")
    func reservedTypes() async throws {
        let dir = TemporaryDirectory()
        let r = try await ChildProcess.run(["log", "append", "--data-dir", dir.data, "--stream", "run-x",
                                            "--type", "run.created.v1", "--payload", "{}"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("written only by Runlog itself"))
    }
}
