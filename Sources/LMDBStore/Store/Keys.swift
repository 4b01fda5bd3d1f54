import EventLog
/// Key encodings. Integers in keys are big-endian so LMDB's byte order is numeric order.
enum Keys {
    /// Runs `body` with the 8 big-endian bytes of `value`.
    @inline(__always)
    static func withUInt64<T>(_ value: UInt64, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try withUnsafeBytes(of: value.bigEndian, body)
    }

    @inline(__always)
    static func uint64(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard bytes.count == 8 else { return nil }
        return UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
    }

    /// `streams` key: stream name, a 0 byte, version (big-endian). Stream names never hold a 0 byte,
    /// so one stream's keys are contiguous and ordered by version.
    static func stream(_ name: String, version: UInt64) -> [UInt8] {
        var key = streamPrefix(name)
        withUnsafeBytes(of: version.bigEndian) { key.append(contentsOf: $0) }
        return key
    }

    /// The bytes every `streams` key of `name` begins with.
    static func streamPrefix(_ name: String) -> [UInt8] {
        var key = [UInt8]()
        key.reserveCapacity(name.utf8.count + 9)
        key.append(contentsOf: name.utf8)
        key.append(0)
        return key
    }
}
