public import Foundation
import Synchronization

/// The SHA-256 of an event in the hash chain.
public struct EventHash: Hashable, Sendable, CustomStringConvertible {
    // Four words instead of an array: no allocation per decoded event.
    package var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    /// The chain's starting point: 32 zero bytes.
    public static let zero = EventHash(w0: 0, w1: 0, w2: 0, w3: 0)

    package init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        (self.w0, self.w1, self.w2, self.w3) = (w0, w1, w2, w3)
    }

    /// Reads 32 bytes; `bytes` must hold at least that many.
    package init(_ bytes: UnsafeRawBufferPointer) {
        w0 = bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)
        w1 = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        w2 = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        w3 = bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
    }

    /// Parses 64 hexadecimal digits.
    public init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in 0..<32 {
            guard let hi = Self.nibble(utf8[2 * i]), let lo = Self.nibble(utf8[2 * i + 1]) else { return nil }
            bytes[i] = hi << 4 | lo
        }
        self = bytes.withUnsafeBytes { EventHash($0) }
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    package func write(to buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        buffer.storeBytes(of: w0, toByteOffset: offset, as: UInt64.self)
        buffer.storeBytes(of: w1, toByteOffset: offset + 8, as: UInt64.self)
        buffer.storeBytes(of: w2, toByteOffset: offset + 16, as: UInt64.self)
        buffer.storeBytes(of: w3, toByteOffset: offset + 24, as: UInt64.self)
    }

    /// The 32 bytes of the hash.
    public var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { buffer, count in
            write(to: UnsafeMutableRawBufferPointer(buffer), at: 0)
            count = 32
        }
    }

    /// The hash as 64 lowercase hexadecimal digits.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { hex }
}

/// Who caused an event and why: carried in every envelope and covered by the hash.
public struct EventMetadata: Hashable, Sendable {
    /// The identity that issued the command (for example an API key id).
    public var actor: String?
    /// Groups every event that one request caused.
    public var correlationId: String?
    /// The event or command that directly caused this one.
    public var causationId: String?

    public init(actor: String? = nil, correlationId: String? = nil, causationId: String? = nil) {
        self.actor = actor
        self.correlationId = correlationId
        self.causationId = causationId
    }
}

/// An event to append: its id, type, metadata and payload bytes.
public struct NewEvent: Sendable {
    /// The event's identity; appending an id that is already stored is idempotent.
    public var id: UUID
    public var type: String
    public var metadata: EventMetadata
    public var payload: [UInt8]
    /// The payload as the appender already has it decoded (never stored): handed to inline
    /// projections (`EventView.decoded`) so they need not parse `payload` again. It must be
    /// exactly what decoding `payload` gives, since a rebuild from the log decodes it.
    public var decoded: (any Sendable)?

    /// Creates an event; `id` defaults to a new time-ordered (version 7) UUID.
    public init(id: UUID = .timeOrdered(), type: String, payload: [UInt8], metadata: EventMetadata = .init()) {
        self.id = id
        self.type = type
        self.metadata = metadata
        self.payload = payload
    }

    /// Creates an event whose payload is the UTF-8 of `json`.
    public init(id: UUID = .timeOrdered(), type: String, json: String, metadata: EventMetadata = .init()) {
        self.init(id: id, type: type, payload: Array(json.utf8), metadata: metadata)
    }
}

/// A stored event: the envelope as it is in the log.
public struct RecordedEvent: Sendable, Hashable {
    /// Global position, gap-free from 1.
    public var position: UInt64
    public var stream: String
    /// Version within the stream, contiguous from 1.
    public var streamVersion: UInt64
    public var id: UUID
    public var type: String
    /// UTC milliseconds since 1970; never decreases along the log.
    public var recordedAt: Int64
    public var metadata: EventMetadata
    public var payload: [UInt8]
    public var previousHash: EventHash
    public var hash: EventHash

    /// `recordedAt` as a `Date`.
    public var recordedDate: Date { Date(timeIntervalSince1970: Double(recordedAt) / 1000) }
}

extension UUID {
    /// A version 7 UUID: 48 bits of Unix milliseconds, a 12-bit counter, then random bits. Ids
    /// made this way sort by time, and the ids one process makes are strictly increasing (while
    /// the clock does not step back more than 10 s): each goes at the end of the event-id index
    /// and the run table, so their B-tree pages fill up instead of splitting half full (RFC 9562,
    /// section 6.2, method 1). Within one millisecond the counter counts up from a random start
    /// below 2,048; when it runs out, the ids borrow the next millisecond.
    ///
    /// The random bits come from a xoshiro256** generator seeded once from the system's
    /// random source: two `getrandom` calls per id showed up as a sixth of the CPU time of a bulk
    /// append in `tools/bench`.
    public static func timeOrdered(now: Date = Date()) -> UUID {
        let ms = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        let (time, counter, random) = TimeOrderedRandom.shared.withLock { rng in rng.nextId(ms: ms) }
        let high = (time << 16) | 0x7000 | counter                // 48 bits time, version 7, 12 counter
        let low = (random & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000 // variant 10, 62 random
        let h = high.bigEndian, l = low.bigEndian
        return withUnsafeBytes(of: (h, l)) { b in
            UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                        b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
        }
    }
}

/// xoshiro256**, seeded from the system random source.
struct TimeOrderedRandom: RandomNumberGenerator {
    static let shared = Mutex(TimeOrderedRandom())
    private var s: (UInt64, UInt64, UInt64, UInt64)
    /// The millisecond and counter of the last id made.
    private var lastMs: UInt64 = 0
    private var counter: UInt64 = 0

    /// The time, 12-bit counter and random bits of the next id at `ms`: after the last id when
    /// `ms` is not more than 10 s before the last one's time, else from a fresh counter.
    mutating func nextId(ms: UInt64) -> (time: UInt64, counter: UInt64, random: UInt64) {
        if ms <= lastMs && lastMs - ms < 10_000 {
            counter += 1
            if counter > 0x0FFF {
                lastMs += 1
                counter = next() & 0x07FF
            }
        } else {
            lastMs = ms
            counter = next() & 0x07FF
        }
        return (lastMs, counter, next())
    }

    init() {
        var system = SystemRandomNumberGenerator()
        s = (system.next(), system.next(), system.next(), system.next())
        if s == (0, 0, 0, 0) { s.0 = 1 }
    }

    mutating func next() -> UInt64 {
        let result = (s.1 &* 5).rotatedLeft(7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3.rotatedLeft(45)
        return result
    }
}

extension UInt64 {
    fileprivate func rotatedLeft(_ k: UInt64) -> UInt64 { (self << k) | (self >> (64 - k)) }
}
