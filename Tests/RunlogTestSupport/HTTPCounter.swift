public import Foundation

/// `tools/testing/http_counter.py` on loopback: counts the calls it gets, and records their keys and the
/// Authorization and Cookie headers.
public final class HTTPCounter: @unchecked Sendable {
    // `@unchecked`: `Process` is not `Sendable`; it is only killed and asked whether it runs.
    public let process = Process()
    public let url: String
    /// The child's standard input: it exits when this ends, so it never outlives the test process
    /// (an orphan holding the test runner's output open would make `swift test` wait forever).
    private let input: Pipe

    public init() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tools/testing/http_counter.py").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script]
        process.standardError = FileHandle.nullDevice
        let process = process
        let (input, out) = try Spawning.locked {
            let (input, out) = (Pipe(), Pipe())
            process.standardOutput = out
            process.standardInput = input
            try process.run()
            return (input, out)
        }
        self.input = input
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { throw TestFailure("http_counter.py did not start") }
            line.append(chunk)
        }
        let port = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        url = "http://127.0.0.1:\(port)"
    }

    public func stats() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(string: url + "/count")!)
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    public func count() throws -> Int { try stats()["calls"] as? Int ?? -1 }
    public func keys() throws -> [String: Int] { try stats()["keys"] as? [String: Int] ?? [:] }

    /// SIGKILL: a child can inherit a blocked SIGTERM from the test process's threads.
    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        while process.isRunning { usleep(1_000) }
    }
}
