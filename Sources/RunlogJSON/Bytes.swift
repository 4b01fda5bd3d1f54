public import Foundation

extension UnsafeRawBufferPointer {
    /// Byte-wise equality with `other`.
    @inlinable public func equals(_ other: UnsafeRawBufferPointer) -> Bool {
        count == other.count && (count == 0 || memcmp(baseAddress!, other.baseAddress!, count) == 0)
    }

    /// Whether these bytes begin with `prefix`.
    @inlinable public func hasPrefix(_ prefix: UnsafeRawBufferPointer) -> Bool {
        count >= prefix.count && (prefix.count == 0 || memcmp(baseAddress!, prefix.baseAddress!, prefix.count) == 0)
    }
}
