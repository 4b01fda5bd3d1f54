import ArgumentParser
import EventLog
import LMDBStore
import Foundation

/// `--data-dir`, shared by every command that opens the store.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .customLong("data-dir"),
        help: ArgumentHelp(
            "The data directory (default: $RUNLOG_DATA_DIR, else ./data).",
            valueName: "dir"
        )
    )
    var dataDir: String?

    var directory: String {
        if let dataDir { return dataDir }
        if let env = ProcessInfo.processInfo.environment["RUNLOG_DATA_DIR"], !env.isEmpty { return env }
        return "./data"
    }

    /// Opens the store; read-only opens work while a server holds the directory for writing.
    func open(readOnly: Bool) throws -> LMDBEventStore {
        do {
            return try LMDBEventStore(directory: directory, options: .init(readOnly: readOnly))
        } catch {
            throw CLIError(error.message)
        }
    }

    /// Opens the store for a writing command; when a server holds it, says to go through the server.
    func openForWriting() throws -> LMDBEventStore {
        do {
            return try LMDBEventStore(directory: directory)
        } catch where error.code == .writerLocked {
            throw CLIError(error.message + "; while a server runs, send the command to it with --server URL --key KEY")
        } catch {
            throw CLIError(error.message)
        }
    }
}

/// A failure to report as `Error: message` with exit code 1 (ArgumentParser prints it so).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Buffered standard output: one `write` per 64 KiB, and a flush on demand.
struct Output {
    private var buffer: [UInt8] = []

    init() { buffer.reserveCapacity(1 << 16) }

    mutating func line(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= 1 << 16 { flush() }
    }

    mutating func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { break }
                offset += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("Error: " + message + "\n").utf8))
}
