import EventStoreConformance
import Foundation
import RunlogTestSupport
import Testing
@testable import EventLog
@testable import LMDBStore

/// The data directory's permissions, its damaged or missing data file, the start-up tail check
/// and backups (issue 22, items 12, 13, 14 and 20). Damage that made LMDB kill the process is
/// tested with child processes (RunlogTests, `DamagedDataTests`).
@Suite("Data directory")
struct DataDirectoryTests {
    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    static func fill(_ store: LMDBEventStore, count: Int) async throws {
        for i in 1...count {
            try await store.append(to: "s-\(i % 5)", [event("t", "{\"i\":\(i),\"m\":\"marker-\(i)-end\"}")])
        }
    }

    /// Overwrites every copy of `marker` in the file (copy-on-write leaves stale copies behind;
    /// one of them is the live page); returns how many it changed.
    @discardableResult
    static func tamper(_ file: String, _ marker: String) throws -> Int {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        var from = bytes.startIndex
        var copies = 0
        while let range = bytes.range(of: Data(marker.utf8), in: from..<bytes.endIndex) {
            bytes[range.lowerBound] ^= 0x01
            from = range.upperBound
            copies += 1
        }
        try bytes.write(to: URL(fileURLWithPath: file))
        return copies
    }

    @Test("a new data directory is 0700 and its files 0600")
    func privateFiles() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        try await store.append(to: "s", [event()])
        #expect(try Self.mode(dir.data) == 0o700)
        for name in ["data.mdb", "lock.mdb", "writer.lock"] {
            #expect(try Self.mode(dir.data + "/" + name) == 0o600, "\(name)")
        }
        store.close()
    }

    @Test("files an older version made 0644 are made 0600 by the next writable open")
    func tightensOldFiles() async throws {
        let dir = TemporaryDirectory()
        try LMDBEventStore.open(dir.data).close()
        for name in ["data.mdb", "lock.mdb", "writer.lock"] {
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: dir.data + "/" + name)
        }
        try LMDBEventStore.open(dir.data).close()
        for name in ["data.mdb", "lock.mdb", "writer.lock"] {
            #expect(try Self.mode(dir.data + "/" + name) == 0o600, "\(name)")
        }
    }

    @Test("an empty data.mdb is refused by every open, naming the file")
    func emptyDataFile() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        try await Self.fill(store, count: 3)
        store.close()
        try Data().write(to: URL(fileURLWithPath: dir.data + "/data.mdb"))
        for readOnly in [true, false] {
            let error = await expectStoreError(.corrupted) {
                _ = try LMDBEventStore(directory: dir.data, options: .init(readOnly: readOnly))
            }
            #expect(error?.message.contains(dir.data + "/data.mdb is empty") == true, "\(error?.message ?? "")")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.data + "/data.mdb")).isEmpty)
    }

    @Test("a writable open refuses a directory whose data.mdb is gone while lock.mdb or secret.key remain")
    func missingDataFile() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        try await Self.fill(store, count: 3)
        store.close()
        try FileManager.default.removeItem(atPath: dir.data + "/data.mdb")
        let error = await expectStoreError(.corrupted) { _ = try LMDBEventStore.open(dir.data) }
        #expect(error?.message.contains("data.mdb is missing") == true)
        #expect(error?.message.contains("lock.mdb") == true)
        #expect(!FileManager.default.fileExists(atPath: dir.data + "/data.mdb"))
    }

    @Test("a writable open checks the tail of the chain; allowBrokenChain overrides; reads still work")
    func brokenTail() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        try await Self.fill(store, count: 40)
        store.close()
        #expect(try Self.tamper(dir.data + "/data.mdb", "marker-38-end") >= 1)

        let error = await expectStoreError(.corrupted) { _ = try LMDBEventStore.open(dir.data) }
        #expect(error?.message.contains("does not verify at position 38") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("--allow-broken-chain") == true)
        // A tail shorter than the damage does not see it.
        try LMDBEventStore.open(dir.data, options: .init(mapSize: 64 << 20, verifyTailEvents: 2)).close()
        let allowed = try LMDBEventStore.open(dir.data, options: .init(mapSize: 64 << 20, allowBrokenChain: true))
        allowed.close()
        let reader = try LMDBEventStore(directory: dir.data, options: .init(readOnly: true))
        guard case .broken(38, _) = try reader.verify() else {
            Issue.record("verify does not see the damage")
            return
        }
        reader.close()
    }

    @Test("a writable open refuses a log shorter than its recorded head")
    func logShorterThanHead() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        try await Self.fill(store, count: 10)
        // Remove the last event behind the store's back, as a damaged file could.
        try store.env.write { txn in
            _ = try Keys.withUInt64(10) { try txn.delete(store.dbs.events, $0) }
        }
        store.close()
        let error = await expectStoreError(.corrupted) { _ = try LMDBEventStore.open(dir.data) }
        #expect(error?.message.contains("ends at position 9, but its recorded head is position 10") == true,
                "\(error?.message ?? "")")
    }

    @Test("backup writes a compacted copy that verifies, from a read-only store while a writer appends")
    func backup() async throws {
        let dir = TemporaryDirectory()
        let store = try LMDBEventStore.open(dir.data)
        try await Self.fill(store, count: 300)
        let reader = try LMDBEventStore(directory: dir.data, options: .init(readOnly: true))
        let writing = Task { try await Self.fill(store, count: 200) }
        try reader.backup(to: dir.path + "/backup")
        try await writing.value
        reader.close()
        store.close()
        #expect(try Self.mode(dir.path + "/backup") == 0o700)
        #expect(try Self.mode(dir.path + "/backup/data.mdb") == 0o600)
        let copy = try LMDBEventStore(directory: dir.path + "/backup", options: .init(readOnly: true))
        defer { copy.close() }
        guard case .intact(let count, _) = try copy.verify() else {
            Issue.record("the backup does not verify")
            return
        }
        #expect(count >= 300 && count <= 500)
        // A backup refuses a directory that holds something.
        await expectStoreError(.invalidArgument) { try copy.backup(to: dir.path + "/backup") }
    }
}
