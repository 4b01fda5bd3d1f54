import RunlogJSON
/// Bytes that are not a run record of a known format.
public struct RunRecordDecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { "invalid run record: \(message)" }

    package init(message: String) {
        self.message = message
    }
}

/// The binary form of a run record, the value of a run in an LMDB table: written for every run
/// event on the writer thread, so it is made of varints and length-prefixed bytes, with no
/// Foundation coder and no `Data` in the loop.
///
/// Layout (version 1), fields in this order:
///
/// | field | encoding |
/// |---|---|
/// | format version | byte `1` |
/// | flags | varint bitfield of `Flags`: bools and which optionals follow |
/// | `runId`, `workflowId` | string: varint length + UTF-8 |
/// | `version` | zigzag varint |
/// | `arm` | byte (treatment 0, control 1, none 2) |
/// | `rolloutId`? | string |
/// | `source.kind` | string |
/// | `source.reference`?, `source.row`? | string, zigzag varint |
/// | `parameters` | JSON: byte 0 (null), or 1 + varint length + compact JSON text |
/// | `objectType`?, `objectToken`?, `eventType`? | string each |
/// | `queue` | byte (realtime 0, batch 1) |
/// | `quotaDay` | string |
/// | `context`, `stepOverrides` | JSON: byte 0 (nil), or 1 + length + text (`null` for `.null`) |
/// | `createdAt` | zigzag varint |
/// | `createdPosition` | varint |
/// | `createdIndex`? | varint |
/// | `status` | byte (queued 0, running 1, completed 2, failed 3, cancelled 4) |
/// | `route`? | string |
/// | steps | varint count, then per step: flags byte (`StepFlags`), `uid`, `type`, status byte (running 0, retrying 1, completed 2, failed 3), `attempts` zigzag, `idempotencyKey`?, `output` (JSON, 0 = nil), `error`?, `startedAt` zigzag, `finishedAt`? zigzag |
/// | `decision`?, `failure`? | string each |
/// | `finishedAt`? | zigzag varint |
///
/// `?` marks a field written only when its flag is set. JSON values round-trip as `==` sees
/// them (a number with no fraction, such as `2.0`, comes back as the integer `2`); numbers that
/// are not finite are written as `null`, as `jsonText` writes them.
extension RunRecord {
    /// The version byte that starts the binary form.
    static let binaryFormat: UInt8 = 1

    /// Bools of the record and which of its optionals are written.
    private enum Flags {
        static let detailed: UInt64 = 1 << 0
        static let routeDecided: UInt64 = 1 << 1
        static let rolloutId: UInt64 = 1 << 2
        static let reference: UInt64 = 1 << 3
        static let row: UInt64 = 1 << 4
        static let objectType: UInt64 = 1 << 5
        static let objectToken: UInt64 = 1 << 6
        static let eventType: UInt64 = 1 << 7
        static let route: UInt64 = 1 << 8
        static let decision: UInt64 = 1 << 9
        static let failure: UInt64 = 1 << 10
        static let finishedAt: UInt64 = 1 << 11
        static let createdIndex: UInt64 = 1 << 12
        static let all: UInt64 = (1 << 13) - 1
    }

    /// Which optionals of a step are written.
    private enum StepFlags {
        static let idempotencyKey: UInt8 = 1 << 0
        static let error: UInt8 = 1 << 1
        static let finishedAt: UInt8 = 1 << 2
        static let all: UInt8 = (1 << 3) - 1
    }

    /// Appends the record's binary form to `out`.
    package func encode(into out: inout [UInt8]) {
        let c = created
        var flags: UInt64 = 0
        if detailed { flags |= Flags.detailed }
        if routeDecided { flags |= Flags.routeDecided }
        if c.rolloutId != nil { flags |= Flags.rolloutId }
        if c.source.reference != nil { flags |= Flags.reference }
        if c.source.row != nil { flags |= Flags.row }
        if c.objectType != nil { flags |= Flags.objectType }
        if c.objectToken != nil { flags |= Flags.objectToken }
        if c.eventType != nil { flags |= Flags.eventType }
        if route != nil { flags |= Flags.route }
        if decision != nil { flags |= Flags.decision }
        if failure != nil { flags |= Flags.failure }
        if finishedAt != nil { flags |= Flags.finishedAt }
        if createdIndex != nil { flags |= Flags.createdIndex }

        out.append(Self.binaryFormat)
        out.appendVarint(flags)
        out.appendString(c.runId)
        out.appendString(c.workflowId)
        out.appendSigned(Int64(c.version))
        out.append(c.arm.binaryTag)
        if let rolloutId = c.rolloutId { out.appendString(rolloutId) }
        out.appendString(c.source.kind)
        if let reference = c.source.reference { out.appendString(reference) }
        if let row = c.source.row { out.appendSigned(Int64(row)) }
        // Null (every summary's) as the tag alone.
        if c.parameters == .null { out.append(0) } else { out.appendJSON(c.parameters) }
        if let objectType = c.objectType { out.appendString(objectType) }
        if let objectToken = c.objectToken { out.appendString(objectToken) }
        if let eventType = c.eventType { out.appendString(eventType) }
        out.append(c.queue.binaryTag)
        out.appendString(c.quotaDay)
        out.appendOptionalJSON(c.context)
        out.appendOptionalJSON(c.stepOverrides)
        out.appendSigned(createdAt)
        out.appendVarint(createdPosition)
        if let createdIndex { out.appendVarint(UInt64(createdIndex)) }
        out.append(status.binaryTag)
        if let route { out.appendString(route) }
        out.appendVarint(UInt64(steps.count))
        for step in steps {
            var stepFlags: UInt8 = 0
            if step.idempotencyKey != nil { stepFlags |= StepFlags.idempotencyKey }
            if step.error != nil { stepFlags |= StepFlags.error }
            if step.finishedAt != nil { stepFlags |= StepFlags.finishedAt }
            out.append(stepFlags)
            out.appendString(step.uid)
            out.appendString(step.type)
            out.append(step.status.binaryTag)
            out.appendSigned(Int64(step.attempts))
            if let idempotencyKey = step.idempotencyKey { out.appendString(idempotencyKey) }
            out.appendOptionalJSON(step.output)
            if let error = step.error { out.appendString(error) }
            out.appendSigned(step.startedAt)
            if let finishedAt = step.finishedAt { out.appendSigned(finishedAt) }
        }
        if let decision { out.appendString(decision) }
        if let failure { out.appendString(failure) }
        if let finishedAt { out.appendSigned(finishedAt) }
    }

    /// The record's binary form.
    package var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160)
        encode(into: &out)
        return out
    }

    /// Decodes what `encode(into:)` wrote. Truncated or malformed bytes, bytes left over, an
    /// unknown format version or enum byte throw; nothing is read outside `bytes`.
    package init(encoded bytes: UnsafeRawBufferPointer) throws(RunRecordDecodingError) {
        var r = BinaryReader(bytes: bytes)
        let format = try r.byte()
        guard format == Self.binaryFormat else { throw r.error("unknown format version \(format)", at: 0) }
        let flags = try r.varint()
        guard flags & ~Flags.all == 0 else { throw r.error("unknown flags \(flags)") }

        let runId = try r.string()
        let workflowId = try r.string()
        let version = try r.int()
        let arm = try r.tag(Arm.init(binaryTag:), "arm")
        let rolloutId = try flags & Flags.rolloutId != 0 ? r.string() : nil
        let kind = try r.string()
        let reference = try flags & Flags.reference != 0 ? r.string() : nil
        let row = try flags & Flags.row != 0 ? r.int() : nil
        let parameters = try r.optionalJSON() ?? .null
        let objectType = try flags & Flags.objectType != 0 ? r.string() : nil
        let objectToken = try flags & Flags.objectToken != 0 ? r.string() : nil
        let eventType = try flags & Flags.eventType != 0 ? r.string() : nil
        let queue = try r.tag(RunQueue.init(binaryTag:), "queue")
        let quotaDay = try r.string()
        let context = try r.optionalJSON()
        let stepOverrides = try r.optionalJSON()
        let created = RunCreated(
            runId: runId, workflowId: workflowId, version: version, arm: arm, rolloutId: rolloutId,
            source: RunSource(kind: kind, reference: reference, row: row), parameters: parameters,
            objectType: objectType, objectToken: objectToken, eventType: eventType, queue: queue,
            quotaDay: quotaDay, context: context, stepOverrides: stepOverrides
        )
        let createdAt = try r.signed()
        let createdPosition = try r.varint()
        let createdIndex = try flags & Flags.createdIndex != 0 ? r.varint() : nil
        guard (createdIndex ?? 0) < UInt64(RunsImported.maxRows) else { throw r.error("created index \(createdIndex ?? 0) out of range") }
        // Made as detailed, so that `created` is kept as read, then marked as it was.
        self.init(created: created, createdAt: createdAt, createdPosition: createdPosition,
                  createdIndex: createdIndex.map { Int($0) }, detailed: true)
        detailed = flags & Flags.detailed != 0
        routeDecided = flags & Flags.routeDecided != 0
        status = try r.tag(Status.init(binaryTag:), "run status")
        if flags & Flags.route != 0 { route = try r.string() }

        let stepCount = try r.varint()
        // A step takes at least 7 bytes: no count can ask for more room than the bytes hold.
        guard stepCount <= UInt64(r.remaining / 7) else { throw r.error("\(stepCount) steps do not fit") }
        steps.reserveCapacity(Int(stepCount))
        for _ in 0..<stepCount {
            let stepFlags = try r.byte()
            guard stepFlags & ~StepFlags.all == 0 else { throw r.error("unknown step flags \(stepFlags)") }
            let uid = try r.string()
            let type = try r.string()
            let stepStatus = try r.tag(StepRecord.Status.init(binaryTag:), "step status")
            let attempts = try r.int()
            let idempotencyKey = try stepFlags & StepFlags.idempotencyKey != 0 ? r.string() : nil
            let output = try r.optionalJSON()
            let error = try stepFlags & StepFlags.error != 0 ? r.string() : nil
            let startedAt = try r.signed()
            let stepFinishedAt = try stepFlags & StepFlags.finishedAt != 0 ? r.signed() : nil
            steps.append(StepRecord(uid: uid, type: type, status: stepStatus, attempts: attempts,
                                    idempotencyKey: idempotencyKey, output: output, error: error,
                                    startedAt: startedAt, finishedAt: stepFinishedAt))
        }

        if flags & Flags.decision != 0 { decision = try r.string() }
        if flags & Flags.failure != 0 { failure = try r.string() }
        if flags & Flags.finishedAt != 0 { finishedAt = try r.signed() }
        guard r.remaining == 0 else { throw r.error("\(r.remaining) bytes after the record") }
    }
}

// MARK: Enum bytes

// Fixed numbers, not raw values: renaming a case must not change stored records.

extension Arm {
    fileprivate var binaryTag: UInt8 {
        switch self {
        case .treatment: 0
        case .control: 1
        case .none: 2
        }
    }

    fileprivate init?(binaryTag: UInt8) {
        switch binaryTag {
        case 0: self = .treatment
        case 1: self = .control
        case 2: self = .none
        default: return nil
        }
    }
}

extension RunQueue {
    fileprivate var binaryTag: UInt8 {
        switch self {
        case .realtime: 0
        case .batch: 1
        }
    }

    fileprivate init?(binaryTag: UInt8) {
        switch binaryTag {
        case 0: self = .realtime
        case 1: self = .batch
        default: return nil
        }
    }
}

extension RunRecord.Status {
    fileprivate var binaryTag: UInt8 {
        switch self {
        case .queued: 0
        case .running: 1
        case .completed: 2
        case .failed: 3
        case .cancelled: 4
        }
    }

    fileprivate init?(binaryTag: UInt8) {
        switch binaryTag {
        case 0: self = .queued
        case 1: self = .running
        case 2: self = .completed
        case 3: self = .failed
        case 4: self = .cancelled
        default: return nil
        }
    }
}

extension StepRecord.Status {
    fileprivate var binaryTag: UInt8 {
        switch self {
        case .running: 0
        case .retrying: 1
        case .completed: 2
        case .failed: 3
        }
    }

    fileprivate init?(binaryTag: UInt8) {
        switch binaryTag {
        case 0: self = .running
        case 1: self = .retrying
        case 2: self = .completed
        case 3: self = .failed
        default: return nil
        }
    }
}

// MARK: Writing

extension [UInt8] {
    /// LEB128: seven bits a byte, low bits first, the high bit set on all bytes but the last.
    fileprivate mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        append(UInt8(v))
    }

    /// Zigzag, so that small negative numbers are short too: 0, -1, 1, -2, … as 0, 1, 2, 3, ….
    fileprivate mutating func appendSigned(_ value: Int64) {
        appendVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    fileprivate mutating func appendString(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            appendVarint(UInt64(utf8.count))
            append(contentsOf: utf8)
        }
    }

    /// Tag 1 and the value's compact JSON text with its length before it. The text is written in
    /// place and the length moved in front of it, which spares a buffer for the text.
    fileprivate mutating func appendJSON(_ value: JSONValue) {
        append(1)
        let start = count
        value.write(to: &self)
        let length = UInt64(count - start)
        var size = 1
        while length >> (7 * UInt64(size)) != 0 { size += 1 }
        insert(contentsOf: repeatElement(0, count: size), at: start)
        var v = length
        for i in start..<(start + size) {
            self[i] = UInt8(truncatingIfNeeded: v) | (i < start + size - 1 ? 0x80 : 0)
            v >>= 7
        }
    }

    /// Tag 0 for nil, else as `appendJSON` (so `.null` is tag 1 and the text `null`).
    fileprivate mutating func appendOptionalJSON(_ value: JSONValue?) {
        switch value {
        case .none: append(0)
        case .some(let value): appendJSON(value)
        }
    }
}

// MARK: Reading

/// Reads the fields of a binary run record one after another, checking each length against the
/// bytes left.
private struct BinaryReader {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    var remaining: Int { bytes.count - index }

    func error(_ message: String, at offset: Int? = nil) -> RunRecordDecodingError {
        RunRecordDecodingError(message: "\(message) at byte \(offset ?? index)")
    }

    @inline(__always) mutating func byte() throws(RunRecordDecodingError) -> UInt8 {
        guard index < bytes.count else { throw error("unexpected end") }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func varint() throws(RunRecordDecodingError) -> UInt64 {
        let first = try byte()
        if first < 0x80 { return UInt64(first) }
        var result = UInt64(first & 0x7F)
        var shift: UInt64 = 7
        while true {
            let b = try byte()
            // The tenth byte holds the last bit of 64.
            guard shift < 63 || b <= 1 else { throw error("varint overflows 64 bits") }
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
        }
    }

    mutating func signed() throws(RunRecordDecodingError) -> Int64 {
        let v = try varint()
        return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
    }

    mutating func int() throws(RunRecordDecodingError) -> Int {
        let v = try signed()
        guard let i = Int(exactly: v) else { throw error("\(v) does not fit in an Int") }
        return i
    }

    /// The next `count` bytes, given as a varint before them.
    mutating func lengthPrefixed() throws(RunRecordDecodingError) -> UnsafeRawBufferPointer {
        let length = try varint()
        guard length <= UInt64(remaining) else { throw error("length \(length) runs past the end") }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[index..<(index + Int(length))])
        index += Int(length)
        return slice
    }

    mutating func string() throws(RunRecordDecodingError) -> String {
        let start = index
        let bytes = try lengthPrefixed()
        // Ids and names are ASCII: checked with a plain loop, they need no UTF-8 validation,
        // which took a third of decoding a record (perf, tools/bench figure 5).
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw error("a string is not valid UTF-8", at: start)
        }
        return s
    }

    /// Nil for tag 0, the parsed JSON text for tag 1.
    mutating func optionalJSON() throws(RunRecordDecodingError) -> JSONValue? {
        switch try byte() {
        case 0: return nil
        case 1:
            let start = index
            let text = try lengthPrefixed()
            do {
                return try JSONParser.parse(text)
            } catch {
                throw self.error("\(error.message) in the JSON", at: start)
            }
        case let tag: throw error("unknown JSON tag \(tag)", at: index - 1)
        }
    }

    /// An enum case from its byte; `name` says what it is in the error.
    mutating func tag<T>(_ make: (UInt8) -> T?, _ name: String) throws(RunRecordDecodingError) -> T {
        let b = try byte()
        guard let value = make(b) else { throw error("unknown \(name) byte \(b)", at: index - 1) }
        return value
    }
}
