/// An async sequence over chunks already in memory (an upload's body, as tests give it).
public struct ChunkList: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let chunks: [[UInt8]]
    public init(_ chunks: [[UInt8]]) { self.chunks = chunks }
    public struct AsyncIterator: AsyncIteratorProtocol {
        var rest: ArraySlice<[UInt8]>
        public mutating func next() async -> [UInt8]? { rest.popFirst() }
    }
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: chunks[...]) }
}
