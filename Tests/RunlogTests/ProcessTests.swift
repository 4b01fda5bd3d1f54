import EventStoreConformance
import Foundation
import RunlogTestSupport
import Testing
@testable import LMDBStore

/// Tests with real child processes: the writer lock, read-only readers, tampering, crashes.
@Suite("Processes", .serialized)
struct ProcessTests {
    @Test("a second writer is refused while a read-only reader is allowed")
    func writerLock() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore(directory: dir.data)
        try await store.append(to: "s", [event("t", "{\"n\":1}")])

        // In this process: a second writable open is refused before it touches LMDB.
        do {
            _ = try LMDBEventStore(directory: dir.data)
            Issue.record("a second writer opened the directory")
        } catch {
            #expect(error.code == .writerLocked)
            #expect(error.message.contains("pid \(getpid())"))
        }

        // Another process: writing is refused with a clear message, reading works.
        let append = try await ChildProcess.run(["log", "append", "--data-dir", dir.data, "--stream", "s",
                                                 "--type", "t", "--payload", "{}"])
        #expect(append.status != 0)
        #expect(append.stderr.contains("held for writing by another process"))
        let read = try await ChildProcess.run(["log", "read", "--data-dir", dir.data])
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdout.count == 1)
        #expect(read.stdout.first?.contains("\"n\":1") == true)

        // The reader follows events the writer appends while it runs.
        let follower = try ChildProcess(["log", "read", "--data-dir", dir.data, "--follow", "--limit", "3"])
        try await follower.waitFor { $0.count == 1 }
        try await store.append(to: "s", [event("t", "{\"n\":2}")])
        try await store.append(to: "s", [event("t", "{\"n\":3}")])
        #expect(await follower.wait() == 0)
        #expect(follower.output.count == 3)
        #expect(follower.output.last?.contains("\"n\":3") == true)

        // Once the writer closes, another process may write.
        store.close()
        let later = try await ChildProcess.run(["log", "append", "--data-dir", dir.data, "--stream", "s",
                                                "--type", "t", "--payload", "{\"n\":4}", "--expected-version", "3"])
        #expect(later.status == 0, "\(later.stderr)")
        #expect(later.stdout.first?.contains("\"version\":4") == true)
    }

    @Test("verify detects a tampered byte and names its position")
    func tamper() async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try LMDBEventStore(directory: dir.data)
            for i in 1...50 {
                let marker = i == 37 ? "TAMPER-ME" : "plain-\(i)"
                try await store.append(to: "s-\(i % 4)", [event("t", "{\"m\":\"\(marker)\"}")])
            }
            guard case .intact(50, _) = try store.verify() else {
                Issue.record("fresh log does not verify")
                return
            }
            store.close()
        }
        let intact = try await ChildProcess.run(["log", "verify", "--data-dir", dir.data])
        #expect(intact.status == 0)
        #expect(intact.stdout.first?.hasPrefix("intact: 50 events") == true)

        // Change one byte of event 37's payload in the data file. Copy-on-write leaves stale copies
        // of pages behind, so change the byte in every copy: one of them is the live page.
        let file = dir.data + "/data.mdb"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let marker = Data("TAMPER-ME".utf8)
        var searchFrom = bytes.startIndex
        var copies = 0
        while let range = bytes.range(of: marker, in: searchFrom..<bytes.endIndex) {
            bytes[range.lowerBound] = UInt8(ascii: "X")
            searchFrom = range.upperBound
            copies += 1
        }
        #expect(copies >= 1)
        try bytes.write(to: URL(fileURLWithPath: file))

        let broken = try await ChildProcess.run(["log", "verify", "--data-dir", dir.data])
        #expect(broken.status == 1)
        #expect(broken.stdout.first?.hasPrefix("broken at position 37") == true, "\(broken.stdout)")
        let store = try LMDBEventStore(directory: dir.data, options: .init(readOnly: true))
        guard case .broken(let position, let reason) = try store.verify() else {
            Issue.record("tampering not detected")
            return
        }
        #expect(position == 37)
        #expect(reason.contains("hash"))
    }

    @Test("SIGKILL mid-stream loses no acknowledged event", arguments: 1...4)
    func crash(round: Int) async throws {
        let dir = TemporaryDirectory()
        var acknowledged: [UInt64: String] = [:]
        // Two crashes into the same directory per round: the second starts from a recovered log.
        for life in 0..<2 {
            let child = try ChildProcess(["dev", "append-loop", "--data-dir", dir.data,
                                          "--appenders", "\(4 + round * 4)", "--batch", "\(1 + life * 3)"])
            let target = acknowledged.count + 300 + round * 200
            try await child.waitFor { $0.count >= target - acknowledged.count }
            // Let it run a little more so the kill lands at an arbitrary point.
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...30)))
            child.kill(SIGKILL)
            _ = await child.wait()
            for line in child.output {
                let parts = line.split(separator: " ")
                guard parts.count == 2, let position = UInt64(parts[0]) else { continue }
                acknowledged[position] = String(parts[1])
            }
            #expect(child.process.terminationReason == .uncaughtSignal)
        }
        let store = try LMDBEventStore(directory: dir.data, options: .init(readOnly: true))
        let head = try store.head().position
        #expect(head >= UInt64(acknowledged.count))
        for (position, id) in acknowledged {
            let stored = try #require(try store.event(at: position), "acknowledged position \(position) is missing")
            #expect(stored.id.uuidString.lowercased() == id)
        }
        guard case .intact(let count, _) = try store.verify() else {
            Issue.record("the chain does not verify after SIGKILL")
            return
        }
        #expect(count == head)
    }
}
