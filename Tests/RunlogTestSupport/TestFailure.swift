/// An error a test helper throws when what it waits for does not happen; its text says what.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
