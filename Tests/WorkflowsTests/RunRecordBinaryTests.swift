@testable import RunlogJSON
import Testing
@testable import WorkflowModel
@testable import Workflows

@Suite("RunRecord binary form")
struct RunRecordBinaryTests {
    /// A run as the engine's state holds it: no details, no steps.
    static let summary = RunRecord(
        created: RunCreated(runId: "run_1", workflowId: "wf_1", version: 1, arm: .none, rolloutId: nil,
                            source: RunSource(kind: "api"), parameters: .null, objectType: nil, objectToken: nil,
                            eventType: nil, queue: .realtime, quotaDay: "2026-11-23"),
        createdAt: 0, createdPosition: 0, detailed: false
    )

    /// Every field set, with extreme numbers, unicode and nested JSON.
    static var full: RunRecord {
        let parameters: JSONValue = [
            "ip": "10.0.0.1", "name": "Zoë 漢字 🎉", "quote": "a \"b\" \\ c\n\t\u{1}", "n": .integer(.min),
            "big": .integer(.max), "f": 1.5, "tiny": 1e-300, "whole": 2.0, "flags": [true, false, nil],
            "nested": ["list": [[1, 2, [3, ["deep": []]]], ["k": "v"], "", -0.5], "empty": [:]],
        ]
        let created = RunCreated(
            runId: "run_é🎉", workflowId: "wf_\u{0}nul", version: .max, arm: .control, rolloutId: "ro_1",
            source: RunSource(kind: "importer", reference: "irun_ß", row: .min), parameters: parameters,
            objectType: "case", objectToken: "tok_ñ", eventType: "case.opened", queue: .batch, quotaDay: "2026-11-23",
            context: ["apicontent": ["one": [1, "1", nil]], "custom_data": ["field": "välue"]],
            stepOverrides: ["s1": ["parameters": ["url": "http://x/y", "list": [1, [2, [3]]]], "account": "acc_1"]]
        )
        var run = RunRecord(created: created, createdAt: .min, createdPosition: .max, detailed: true)
        run.status = .failed
        run.routeDecided = true
        run.route = "high risk ⚠️"
        run.steps = [
            StepRecord(uid: "s1", type: "http_request", status: .completed, attempts: 3, idempotencyKey: "run_1/s1",
                       output: ["status": 200, "body": parameters], error: nil, startedAt: -1_000, finishedAt: .max),
            StepRecord(uid: "s2", type: "tag", status: .retrying, attempts: .min, idempotencyKey: nil,
                       output: .some(.null), error: "timeout: 30 s ⏱", startedAt: .max, finishedAt: .min),
            StepRecord(uid: "s3", type: "set_field", status: .failed, attempts: .max, idempotencyKey: "",
                       output: .some("text"), error: "", startedAt: 0, finishedAt: 0),
            StepRecord(uid: "", type: "", status: .running, attempts: 0, idempotencyKey: nil,
                       output: Optional<JSONValue>.none, error: nil, startedAt: 1_795_388_701_042, finishedAt: nil),
        ]
        run.decision = "declined"
        run.failure = "step s2 failed: \"timeout\""
        run.finishedAt = -1
        return run
    }

    /// A run created by an importer, as the engine's state holds it once completed.
    static let importerSummary: RunRecord = {
        let created = RunCreated(
            runId: "run_01jd5x7k8m9n0p1q2r3s4t5v6w", workflowId: "wf_01jd5x0a1b2c3d4e5f6g7h8j9k", version: 3,
            arm: .none, rolloutId: nil,
            source: RunSource(kind: "importer", reference: "irun_01jd5x6z7y8x9w0v1u2t3s4r5q", row: 48_213),
            parameters: ["ip": "10.0.0.1"], objectType: nil, objectToken: nil, eventType: nil, queue: .batch,
            quotaDay: "2026-11-23"
        )
        var run = RunRecord(created: created, createdAt: 1_795_388_701_042, createdPosition: 12_345_678, detailed: false)
        run.status = .completed
        run.routeDecided = true
        run.route = "default"
        run.decision = "approved"
        run.finishedAt = 1_795_388_701_311
        return run
    }()

    static func decode(_ bytes: [UInt8]) throws -> RunRecord {
        try bytes.withUnsafeBytes { try RunRecord(encoded: $0) }
    }

    /// Whether decoding `bytes` throws (rather than returning or crashing).
    static func throwsOnDecode(_ bytes: [UInt8]) -> Bool {
        do {
            _ = try decode(bytes)
            return false
        } catch {
            return true
        }
    }

    /// The one byte at which the encodings of `a` and `b` differ.
    static func differingByte(_ a: RunRecord, _ b: RunRecord) -> Int? {
        let x = a.encoded, y = b.encoded
        guard x.count == y.count else { return nil }
        let differing = x.indices.filter { x[$0] != y[$0] }
        return differing.count == 1 ? differing[0] : nil
    }

    @Test("a summary record without steps round-trips")
    func summaryRoundTrip() throws {
        let bytes = Self.summary.encoded
        #expect(bytes.first == 1)
        #expect(try Self.decode(bytes) == Self.summary)
        // Appending keeps what is already in the buffer.
        var out: [UInt8] = [9, 9]
        Self.summary.encode(into: &out)
        #expect(out == [9, 9] + bytes)
    }

    @Test("a detailed record with every field set round-trips")
    func fullRoundTrip() throws {
        let full = Self.full
        let decoded = try Self.decode(full.encoded)
        #expect(decoded == full)
        #expect(decoded.created == full.created)
        #expect(decoded.steps == full.steps)
        #expect(decoded.created.parameters["name"] == "Zoë 漢字 🎉")
        // A null output is not a missing one.
        #expect(decoded.steps[1].output == .some(.null))
        #expect(decoded.steps[3].output == Optional<JSONValue>.none)

        // Null context and overrides are kept apart from absent ones, in both directions.
        var nulls = full
        nulls.created.context = .some(.null)
        nulls.created.stepOverrides = Optional<JSONValue>.none
        let decodedNulls = try Self.decode(nulls.encoded)
        #expect(decodedNulls == nulls)
        #expect(decodedNulls.created.context == .some(.null))
        #expect(decodedNulls.created.stepOverrides == Optional<JSONValue>.none)

        // A summary that still holds parameters (set after init) keeps them, and its flag.
        var summary = full
        summary.detailed = false
        #expect(try Self.decode(summary.encoded) == summary)
    }

    @Test("truncated, padded and malformed bytes throw")
    func malformedThrows() throws {
        for record in [Self.summary, Self.full, Self.importerSummary] {
            let bytes = record.encoded
            for length in 0..<bytes.count {
                #expect(Self.throwsOnDecode(Array(bytes.prefix(length))), "prefix of \(length) of \(bytes.count) bytes")
            }
            #expect(Self.throwsOnDecode(bytes + [0]), "a byte after the record")
            var version = bytes
            for wrong: UInt8 in [0, 2, 0xFF] {
                version[0] = wrong
                #expect(Self.throwsOnDecode(version), "version \(wrong)")
            }
            // Any single byte changed either throws or decodes: never a crash.
            for i in bytes.indices {
                for value: UInt8 in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
                    var changed = bytes
                    changed[i] = value
                    _ = Self.throwsOnDecode(changed)
                }
            }
        }

        // Enum bytes, found as the one byte that changes with the case.
        var other = Self.full
        other.created.arm = .treatment
        let arm = try #require(Self.differingByte(Self.full, other))
        other = Self.full
        other.created.queue = .realtime
        let queue = try #require(Self.differingByte(Self.full, other))
        other = Self.full
        other.status = .queued
        let status = try #require(Self.differingByte(Self.full, other))
        other = Self.full
        other.steps[0].status = .running
        let stepStatus = try #require(Self.differingByte(Self.full, other))
        let bytes = Self.full.encoded
        for (index, unknown) in [(arm, UInt8(3)), (queue, 2), (status, 5), (stepStatus, 4)] {
            for value in [unknown, 0x80, 0xFF] {
                var changed = bytes
                changed[index] = value
                #expect(Self.throwsOnDecode(changed), "byte \(index) set to \(value)")
            }
        }

        // A flag no field has; a JSON tag other than 0 and 1; a string that is not UTF-8.
        var flags = Self.summary.encoded
        #expect(flags[1] == 0)
        flags.replaceSubrange(1...1, with: [0x80, 0x40])
        #expect(Self.throwsOnDecode(flags))
        var tag = Self.summary
        tag.created.parameters = "x"
        var tagged = tag.encoded
        let tagIndex = try #require(tagged.firstIndex(of: UInt8(ascii: "\""))) - 2
        #expect(tagged[tagIndex] == 1)
        tagged[tagIndex] = 2
        #expect(Self.throwsOnDecode(tagged))
        tagged[tagIndex] = 1
        tagged[tagIndex + 2] = UInt8(ascii: "x")
        #expect(Self.throwsOnDecode(tagged), "JSON that does not parse")
        var utf8 = Self.summary.encoded
        let runId = try #require(utf8.firstIndex(of: UInt8(ascii: "r")))
        utf8[runId] = 0xC3
        #expect(Self.throwsOnDecode(utf8))
        // A varint longer than 64 bits (the flags).
        #expect(Self.throwsOnDecode([1] + Array(repeating: 0xFF, count: 10) + [0x01]))
        #expect(Self.throwsOnDecode([1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02]))
    }

    @Test("an importer-created summary takes few bytes")
    func importerSummarySize() throws {
        let bytes = Self.importerSummary.encoded
        print("importer-created summary: \(bytes.count) bytes")
        #expect(bytes.count < 200)
        #expect(try Self.decode(bytes) == Self.importerSummary)
        #expect(Self.importerSummary.created.parameters == .null)
    }
}
