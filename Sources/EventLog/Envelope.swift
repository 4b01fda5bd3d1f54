import Crypto
package import Foundation

/// The binary envelope: how an event is laid out in the `events` database and what its hash covers.
///
/// All integers are little-endian and fixed width, so decoding is a few unaligned loads:
///
/// ```
/// offset size
///  0      1   format (1)
///  1      8   position
///  9      8   stream version
/// 17      8   recorded-at, UTC milliseconds (signed)
/// 25     16   event id (UUID bytes)
/// 41      2   stream length          ┐
/// 43      2   type length            │ 0xFFFF marks an absent
/// 45      2   actor length           │ metadata field
/// 47      2   correlation id length  │
/// 49      2   causation id length    ┘
/// 51      4   payload length
/// 55      …   stream, type, actor, correlation id, causation id, payload (UTF-8 / raw bytes)
/// end-64 32   previous hash
/// end-32 32   hash = SHA-256(previous hash ‖ bytes 0 ..< end-64)
/// ```
///
/// Bytes `0 ..< end-64` are the *canonical envelope bytes*.
@usableFromInline package enum Envelope {
    package static let format: UInt8 = 1
    @usableFromInline package static let headerSize = 55
    @usableFromInline package static let trailerSize = 64
    package static let absent: UInt16 = 0xFFFF

    /// The encoded size of an event.
    package static func size(stream: Int, event: NewEvent) -> Int {
        headerSize + stream + event.type.utf8.count
            + (event.metadata.actor?.utf8.count ?? 0)
            + (event.metadata.correlationId?.utf8.count ?? 0)
            + (event.metadata.causationId?.utf8.count ?? 0)
            + event.payload.count + trailerSize
    }

    /// Writes the envelope into `out` (exactly `size(...)` bytes) and returns its hash.
    package static func encode(
        into out: UnsafeMutableRawBufferPointer,
        position: UInt64,
        stream: String,
        streamVersion: UInt64,
        recordedAt: Int64,
        event: NewEvent,
        previousHash: EventHash
    ) -> EventHash {
        out.storeBytes(of: format, toByteOffset: 0, as: UInt8.self)
        out.storeBytes(of: position.littleEndian, toByteOffset: 1, as: UInt64.self)
        out.storeBytes(of: streamVersion.littleEndian, toByteOffset: 9, as: UInt64.self)
        out.storeBytes(of: recordedAt.littleEndian, toByteOffset: 17, as: Int64.self)
        withUnsafeBytes(of: event.id.uuid) { id in
            UnsafeMutableRawBufferPointer(rebasing: out[25..<41]).copyMemory(from: id)
        }
        var offset = headerSize
        func put(_ string: String?, lengthAt: Int) {
            guard let string else {
                out.storeBytes(of: absent.littleEndian, toByteOffset: lengthAt, as: UInt16.self)
                return
            }
            var s = string
            let n = s.withUTF8 { utf8 in
                UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + utf8.count)])
                    .copyMemory(from: UnsafeRawBufferPointer(utf8))
                return utf8.count
            }
            out.storeBytes(of: UInt16(n).littleEndian, toByteOffset: lengthAt, as: UInt16.self)
            offset += n
        }
        put(stream, lengthAt: 41)
        put(event.type, lengthAt: 43)
        put(event.metadata.actor, lengthAt: 45)
        put(event.metadata.correlationId, lengthAt: 47)
        put(event.metadata.causationId, lengthAt: 49)
        out.storeBytes(of: UInt32(event.payload.count).littleEndian, toByteOffset: 51, as: UInt32.self)
        event.payload.withUnsafeBytes { payload in
            UnsafeMutableRawBufferPointer(rebasing: out[offset..<(offset + payload.count)]).copyMemory(from: payload)
        }
        offset += event.payload.count
        let canonical = UnsafeRawBufferPointer(rebasing: out[0..<offset])
        let hash = chainHash(previous: previousHash, canonical: canonical)
        previousHash.write(to: out, at: offset)
        hash.write(to: out, at: offset + 32)
        return hash
    }

    /// `SHA-256(previous ‖ canonical)`.
    package static func chainHash(previous: EventHash, canonical: UnsafeRawBufferPointer) -> EventHash {
        var hasher = SHA256()
        withUnsafeBytes(of: previous) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: canonical)
        return hasher.finalize().withUnsafeBytes { EventHash($0) }
    }

    /// A bounds-checked view of stored envelope bytes; decodes fields on demand. Its field
    /// accessors are inlinable: replays and projections in other modules read them for every event.
    @usableFromInline package struct View {
        @usableFromInline package let bytes: UnsafeRawBufferPointer
        @usableFromInline package let lengths: (stream: Int, type: Int, actor: Int?, correlation: Int?, causation: Int?, payload: Int)

        package init(_ bytes: UnsafeRawBufferPointer) throws(EventStoreError) {
            guard bytes.count >= Envelope.headerSize + Envelope.trailerSize,
                  bytes.load(fromByteOffset: 0, as: UInt8.self) == Envelope.format
            else { throw EventStoreError(.corrupted, "an envelope has an unknown format or is truncated") }
            func len(_ at: Int) -> Int? {
                let n = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self))
                return n == Envelope.absent ? nil : Int(n)
            }
            guard let stream = len(41), let type = len(43) else {
                throw EventStoreError(.corrupted, "an envelope has no stream or type")
            }
            let payload = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 51, as: UInt32.self)))
            lengths = (stream, type, len(45), len(47), len(49), payload)
            let total = Envelope.headerSize + stream + type + (lengths.actor ?? 0) + (lengths.correlation ?? 0)
                + (lengths.causation ?? 0) + payload + Envelope.trailerSize
            guard total == bytes.count else {
                throw EventStoreError(.corrupted, "an envelope's lengths do not add up to its size")
            }
            self.bytes = bytes
        }

        @inlinable package var position: UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 1, as: UInt64.self)) }
        @inlinable package var streamVersion: UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 9, as: UInt64.self)) }
        @inlinable package var recordedAt: Int64 { Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 17, as: Int64.self)) }
        @inlinable package var streamBytes: UnsafeRawBufferPointer { slice(Envelope.headerSize, lengths.stream) }
        @inlinable package var typeBytes: UnsafeRawBufferPointer { slice(Envelope.headerSize + lengths.stream, lengths.type) }
        package var canonical: UnsafeRawBufferPointer { slice(0, bytes.count - Envelope.trailerSize) }
        @inlinable package var payloadBytes: UnsafeRawBufferPointer {
            slice(bytes.count - Envelope.trailerSize - lengths.payload, lengths.payload)
        }
        @inlinable package var actorBytes: UnsafeRawBufferPointer? {
            lengths.actor.map { slice(Envelope.headerSize + lengths.stream + lengths.type, $0) }
        }
        @inlinable package var actor: String? { actorBytes.map { String(decoding: $0, as: UTF8.self) } }
        package var previousHash: EventHash { EventHash(slice(bytes.count - 64, 32)) }
        package var hash: EventHash { EventHash(slice(bytes.count - 32, 32)) }

        package var id: UUID {
            let b = slice(25, 16)
            return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                               b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
        }

        @inlinable func slice(_ start: Int, _ count: Int) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: bytes[start..<(start + count)])
        }

        /// Copies every field out of the map.
        package func decode() -> RecordedEvent {
            var offset = Envelope.headerSize
            func string(_ n: Int?) -> String? {
                guard let n else { return nil }
                defer { offset += n }
                return String(decoding: slice(offset, n), as: UTF8.self)
            }
            let stream = string(lengths.stream)!
            let type = string(lengths.type)!
            let metadata = EventMetadata(
                actor: string(lengths.actor),
                correlationId: string(lengths.correlation),
                causationId: string(lengths.causation)
            )
            let payload = [UInt8](slice(offset, lengths.payload))
            return RecordedEvent(
                position: position, stream: stream, streamVersion: streamVersion, id: id, type: type,
                recordedAt: recordedAt, metadata: metadata, payload: payload,
                previousHash: previousHash, hash: hash
            )
        }
    }

    /// Checks one stored envelope, the one at `position`: it decodes, names that position, links to
    /// `previous` (nil: not checked) and hashes to its stored hash; the hash, or where and why not.
    package static func check(_ bytes: UnsafeRawBufferPointer, at position: UInt64, previous: EventHash?)
        -> Result<EventHash, ChainFailure> {
        let view: View
        do {
            view = try View(bytes)
        } catch {
            return .failure(ChainFailure(position: position, reason: "the envelope does not decode: \(error.message)"))
        }
        guard view.position == position else {
            return .failure(ChainFailure(position: position, reason: "the envelope names position \(view.position)"))
        }
        if let previous, view.previousHash != previous {
            return .failure(ChainFailure(position: position, reason: "previous hash \(view.previousHash) is not the "
                                         + "hash of position \(position - 1) (\(previous))"))
        }
        let computed = chainHash(previous: view.previousHash, canonical: view.canonical)
        guard computed == view.hash else {
            return .failure(ChainFailure(position: position, reason: "stored hash \(view.hash) does not match the "
                                         + "recomputed \(computed)"))
        }
        return .success(computed)
    }
}

/// Where a hash chain breaks, and why.
package struct ChainFailure: Error {
    package let position: UInt64
    package let reason: String

    package init(position: UInt64, reason: String) {
        self.position = position
        self.reason = reason
    }
}
