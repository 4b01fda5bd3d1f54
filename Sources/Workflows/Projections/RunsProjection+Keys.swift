// The bytes of the run tables (`RunsProjection`): the index keys, an imported batch's index
// entry, and a job's counts as stored.
import WorkflowModel

extension RunsProjection {
    static func workflowKey(_ workflowId: String, _ position: UInt64) -> [UInt8] {
        var key = workflowPrefix(workflowId)
        append(position, to: &key)
        return key
    }

    static func workflowPrefix(_ workflowId: String) -> [UInt8] {
        var key = Array(workflowId.utf8)
        key.append(0)
        return key
    }

    static func sourceKey(_ kind: String, _ reference: String, _ position: UInt64) -> [UInt8] {
        var key = sourcePrefix(kind, reference)
        append(position, to: &key)
        return key
    }

    static func sourcePrefix(_ kind: String, _ reference: String) -> [UInt8] {
        var key = Array(kind.utf8)
        key.append(0)
        key.append(contentsOf: reference.utf8)
        key.append(0)
        return key
    }

    static func activeKey(_ record: RunRecord) -> [UInt8] {
        var key: [UInt8] = [record.created.queue == .realtime ? 0 : 1]
        append(record.createdPosition, to: &key)
        return key
    }

    static func batchActiveKey(_ position: UInt64) -> [UInt8] {
        var key: [UInt8] = [1]
        append(position, to: &key)
        return key
    }

    static func append(_ position: UInt64, to key: inout [UInt8]) {
        withUnsafeBytes(of: position.bigEndian) { key.append(contentsOf: $0) }
    }

    /// The position at the end of an index key.
    static func position(ofKey key: UnsafeRawBufferPointer) -> UInt64 {
        UInt64(bigEndian: key.loadUnaligned(fromByteOffset: key.count - 8, as: UInt64.self))
    }
}

/// An imported batch's entry in the run tables' indexes: byte 1, the number of runs, how many
/// of them have ended (kept in `active` only), both UInt32 big-endian, then the batch's run id
/// prefix (`RunsImported.runIdPrefix`).
struct ImportedBatchEntry: Equatable {
    var prefix: String
    var count: Int
    var ended: Int

    static let marker: UInt8 = 1

    /// Whether an index value is a batch entry rather than a run id.
    static func isEntry(_ value: UnsafeRawBufferPointer) -> Bool { value.first == marker }

    var bytes: [UInt8] {
        var out: [UInt8] = [Self.marker]
        out.reserveCapacity(9 + prefix.utf8.count)
        withUnsafeBytes(of: UInt32(count).bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(ended).bigEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: prefix.utf8)
        return out
    }

    init(prefix: String, count: Int, ended: Int) {
        self.prefix = prefix
        self.count = count
        self.ended = ended
    }

    init?(_ value: UnsafeRawBufferPointer) {
        guard value.count > 9, value[0] == Self.marker else { return nil }
        count = Int(UInt32(bigEndian: value.loadUnaligned(fromByteOffset: 1, as: UInt32.self)))
        ended = Int(UInt32(bigEndian: value.loadUnaligned(fromByteOffset: 5, as: UInt32.self)))
        prefix = String(decoding: UnsafeRawBufferPointer(rebasing: value[9...]), as: UTF8.self)
    }

    func runId(at index: Int) -> String { RunsImported.runId(prefix: prefix, index: index) }
}

extension JobCounts {
    /// Seven UInt64 LE: total, queued, running, completed, failed, cancelled, 0.
    var stored: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(56)
        for n in [total, queued, running, completed, failed, cancelled, 0] {
            withUnsafeBytes(of: UInt64(max(0, n)).littleEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    init?(stored bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 56 else { return nil }
        func at(_ i: Int) -> Int { Int(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))) }
        self.init()
        total = at(0)
        queued = at(1)
        running = at(2)
        completed = at(3)
        failed = at(4)
        cancelled = at(5)
    }
}
