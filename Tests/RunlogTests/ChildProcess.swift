import EventLog
import Foundation
import RunlogTestSupport
import Testing
@testable import LMDBStore

/// The `runlog` executable built beside the test bundle.
enum RunlogBinary {
    static var path: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On Linux the test bundle is `<build>/debug/<Package>PackageTests.xctest`.
        if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
        return dir.appendingPathComponent("runlog").path
    }
}

/// A child process whose standard output is read line by line as it comes, by a reader thread.
final class ChildProcess: @unchecked Sendable {
    // `@unchecked`: the buffers are guarded by `lock`; each pipe is read by one thread.
    let process = Process()
    private let lock = NSLock()
    private var lines: [String] = []
    private var stderrData = Data()
    private var openPipes = 2
    private let stdout: Pipe
    private let stderr: Pipe

    /// `input`, when given, is written to the child's standard input, which is then closed.
    init(_ arguments: [String], environment: [String: String]? = nil, input: Data? = nil) throws {
        let path = RunlogBinary.path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("the runlog executable is missing at \(path): build it first (tools/test does)")
        }
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let process = process
        let (stdout, stderr, stdin) = try Spawning.locked {
            let (stdout, stderr, stdin) = (Pipe(), Pipe(), input.map { _ in Pipe() })
            process.standardOutput = stdout
            process.standardError = stderr
            if let stdin { process.standardInput = stdin }
            try process.run()
            return (stdout, stderr, stdin)
        }
        (self.stdout, self.stderr) = (stdout, stderr)
        if let stdin, let input {
            stdin.fileHandleForWriting.write(input)
            try? stdin.fileHandleForWriting.close()
        }
        let out = stdout.fileHandleForReading
        let err = stderr.fileHandleForReading
        Thread.detachNewThread { [self] in
            var pending = Data()
            while true {
                let chunk = out.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                var complete: [String] = []
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    complete.append(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...newline)
                }
                lock.withLock { lines.append(contentsOf: complete) }
            }
            lock.withLock { openPipes -= 1 }
        }
        Thread.detachNewThread { [self] in
            while true {
                let chunk = err.availableData
                if chunk.isEmpty { break }
                lock.withLock { stderrData.append(chunk) }
            }
            lock.withLock { openPipes -= 1 }
        }
    }

    /// Complete lines printed so far.
    var output: [String] { lock.withLock { lines } }
    var errorOutput: String { lock.withLock { String(decoding: stderrData, as: UTF8.self) } }

    /// Waits until `condition` holds for the lines printed so far, or the timeout passes.
    func waitFor(timeout: Duration = .seconds(60), _ condition: ([String]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(output) {
            guard ContinuousClock.now < deadline else {
                throw TestFailure("timed out; stdout: \(output.suffix(5)), stderr: \(errorOutput)")
            }
            guard process.isRunning || lock.withLock({ openPipes > 0 }) else {
                throw TestFailure("the child exited (\(process.terminationStatus)); stderr: \(errorOutput)")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func kill(_ signal: Int32 = SIGKILL) {
        Foundation.kill(process.processIdentifier, signal)
    }

    /// Waits for the process to end and its output to be read; returns its exit status.
    /// When the waiting task is cancelled (a test's time limit), the child is killed, and the wait
    /// goes on without spinning until it has ended.
    func wait() async -> Int32 {
        var killed = false
        while process.isRunning || lock.withLock({ openPipes > 0 }) {
            if Task.isCancelled, !killed {
                kill(SIGKILL)
                killed = true
            }
            do {
                try await Task.sleep(for: .milliseconds(5))
            } catch {
                usleep(5_000)
            }
        }
        return process.terminationStatus
    }

    /// Runs `runlog` with `arguments` to completion.
    static func run(_ arguments: [String], input: Data? = nil) async throws -> (status: Int32, stdout: [String], stderr: String) {
        let child = try ChildProcess(arguments, input: input)
        let status = await child.wait()
        return (status, child.output, child.errorOutput)
    }
}
