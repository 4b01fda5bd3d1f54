import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Temporary directories

/// Every directory the benchmark makes, under the system temp dir; all are deleted at the end,
/// on an error, and on SIGINT/SIGTERM.
final class TempDirs: Sendable {
    let root: String
    private let made = Mutex<[String]>([])

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        let template = base + "/runlog-bench.XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let result = mkdtemp(&bytes) else {
            throw BenchError("cannot create a temporary directory under \(base): \(String(cString: strerror(errno)))")
        }
        root = String(cString: result)
    }

    /// A new, empty directory inside `root`.
    func make(_ name: String) throws -> String {
        let path = made.withLock { made in
            let path = "\(root)/\(name)-\(made.count)"
            made.append(path)
            return path
        }
        // 0700: `runlog serve` (figure 8) refuses a data directory that group or others can open.
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        return path
    }

    func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        made.withLock { made in made.removeAll { $0 == path } }
    }

    /// Deletes everything, the root included.
    func removeAll() {
        made.withLock { made in made.removeAll() }
        try? FileManager.default.removeItem(atPath: root)
    }

    /// The type of the file system that holds `root` (fsync is free on tmpfs), from /proc/mounts.
    var fileSystem: String {
        guard let mounts = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return "unknown" }
        let path = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
        var best = (mountPoint: "", type: "unknown")
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let mountPoint = String(fields[1])
            let inside = mountPoint == "/" || path == mountPoint || path.hasPrefix(mountPoint + "/")
            if inside && mountPoint.count >= best.mountPoint.count {
                best = (mountPoint, String(fields[2]))
            }
        }
        return best.type
    }
}

/// Removes the temp dirs and exits when the run is interrupted.
func installSignalHandlers(_ temp: TempDirs) -> [any DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            temp.removeAll()
            FileHandle.standardError.write(Data("\ninterrupted; removed \(temp.root)\n".utf8))
            exit(128 + number)
        }
        source.resume()
        return source
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: Time and statistics

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }

    var milliseconds: Double { seconds * 1e3 }
}

/// The median; the mean of the middle two for an even count.
func median(_ values: [Double]) -> Double {
    precondition(!values.isEmpty)
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/// The nearest-rank percentile `p` (0...100) of already sorted values.
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

// MARK: Formatting

/// `1234567.8` → `"1,234,568"`.
func grouped(_ value: Double) -> String {
    let n = Int(value.rounded())
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

func fixed(_ value: Double, _ decimals: Int) -> String {
    String(format: "%.\(decimals)f", value)
}

func rate(_ eventsPerSecond: Double) -> String { grouped(eventsPerSecond) + " events/s" }

func ms(_ value: Double) -> String { fixed(value, 3) + " ms" }

func bytes(_ value: Int) -> String {
    let v = Double(value)
    let kib = 1024.0
    if v >= kib * kib * kib { return fixed(v / (kib * kib * kib), 2) + " GiB" }
    if v >= kib * kib { return fixed(v / (kib * kib), 1) + " MiB" }
    if v >= kib { return fixed(v / kib, 1) + " KiB" }
    return "\(value) B"
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}

/// With RUNLOG_BENCH_TRACE set, writes a timestamped progress line to standard error (to find
/// where a run hangs).
func trace(_ line: @autoclosure () -> String) {
    guard traceEnabled else { return }
    let t = Date().timeIntervalSince1970
    FileHandle.standardError.write(Data("trace \(fixed(t.truncatingRemainder(dividingBy: 1000), 3)): \(line())\n".utf8))
}

let traceEnabled = ProcessInfo.processInfo.environment["RUNLOG_BENCH_TRACE"] != nil

/// Writes a line to standard output at once (unbuffered, so progress shows through a pipe).
func say(_ line: String = "") {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Prints rows as a table with a header rule.
func table(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in i == cells.count - 1 ? c : pad(c, widths[i]) }.joined(separator: "  ")
    }
    say(line(header))
    say(line(widths.map { String(repeating: "-", count: $0) }))
    for row in rows { say(line(row)) }
}
