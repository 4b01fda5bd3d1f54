import ArgumentParser
import EventLog
import LMDBStore
import Foundation
import WorkflowModel
import Workflows

/// Tools for tests and benchmarks; hidden from help.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Test and benchmark helpers.",
        shouldDisplay: false,
        subcommands: [AppendLoop.self, Rebuild.self]
    )

    /// Appends events from several concurrent appenders and prints each acknowledged position,
    /// one per line, flushed as soon as the append returns. The crash tests kill it mid-stream.
    struct AppendLoop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "append-loop")

        @OptionGroup var store: StoreOptions
        @Option(help: "Concurrent appenders.") var appenders = 8
        @Option(help: "Events per appender (0: until killed).") var count = 0
        @Option(help: "Events per append.") var batch = 1

        func run() async throws {
            let store = try await self.store.open(readOnly: false)
            defer { store.close() }
            let output = LineWriter()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for appender in 0..<appenders {
                    group.addTask {
                        var n = 0
                        while count == 0 || n < count {
                            let events = (0..<batch).map { i in
                                NewEvent(type: "dev.appended", json: "{\"appender\":\(appender),\"n\":\(n + i)}")
                            }
                            let result = try await store.append(to: "dev-\(appender)", events)
                            output.write(result.events.map { "\($0.position) \($0.id.uuidString.lowercased())" })
                            n += batch
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}

extension DevCommand {
    /// Replays the whole log into the workflow read models and prints how fast (read-only).
    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rebuild")

        @OptionGroup var store: StoreOptions
        @Option(help: "Passes to time.") var passes = 3

        func run() async throws {
            let opened = try await store.open(readOnly: true)
            defer { opened.close() }
            for pass in 1...max(1, passes) {
                let start = ContinuousClock.now
                let state = try WorkflowsState.rebuild(from: opened)
                let seconds = (ContinuousClock.now - start) / .seconds(1)
                print("pass \(pass): \(state.position) events in \(String(format: "%.3f", seconds)) s = "
                      + "\(Int(Double(state.position) / seconds)) events/s")
            }
        }
    }
}

/// Writes whole lines to standard output with one `write(2)` each, from any thread.
final class LineWriter: Sendable {
    func write(_ lines: [String]) {
        var bytes = [UInt8]()
        for line in lines {
            bytes.append(contentsOf: line.utf8)
            bytes.append(UInt8(ascii: "\n"))
        }
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Foundation.write(1, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
