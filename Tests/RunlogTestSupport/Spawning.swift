import Foundation

/// Every child process the tests start is started inside `Spawning.locked`, with the pipes it is
/// given made inside the same call.
///
/// Foundation's `Process.run` on Linux makes its pipes and its termination socket without
/// close-on-exec and closes the other descriptors in the child from a list taken before it spawns.
/// A pipe or socket another thread makes in that window is inherited by the child. When that child
/// is long-lived (a server, a browser), the other child's output never ends, or Foundation never
/// sees it exit: a full `swift test` hung that way. Under one lock no descriptor of a child is
/// being made while another child is spawned.
public enum Spawning {
    private static let lock = NSLock()

    public static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
