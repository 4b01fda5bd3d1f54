import Foundation

/// A file read in chunks, as an async sequence of byte arrays (so CSV files and S3 objects are
/// read the same way). Never holds more than one chunk.
public struct FileChunks: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let path: String
    var chunkSize = 256 * 1024

    public init(path: String) {
        self.path = path
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        let chunkSize: Int
        let openError: (any Error)?
        var done = false

        public mutating func next() async throws -> [UInt8]? {
            if let openError { throw openError }
            guard !done, let handle else { return nil }
            guard let data = try handle.read(upToCount: chunkSize), !data.isEmpty else {
                done = true
                try? handle.close()
                return nil
            }
            return [UInt8](data)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        do {
            return AsyncIterator(handle: try FileHandle(forReadingFrom: URL(fileURLWithPath: path)), chunkSize: chunkSize,
                                 openError: nil)
        } catch {
            return AsyncIterator(handle: nil, chunkSize: chunkSize, openError: error)
        }
    }
}
