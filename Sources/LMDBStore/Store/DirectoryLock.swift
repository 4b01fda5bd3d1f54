import EventLog
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exclusive writer lock of a data directory: an `flock` on `writer.lock`, released by the
/// kernel when the holding process ends, however it ends. The file holds the holder's pid so a
/// refused process can say who holds it.
final class DirectoryLock: Sendable {
    private let fd: Mutex<Int32>
    private let key: String
    static let fileName = "writer.lock"
    /// The lock files this process holds. A lock this process released can still look held for a
    /// moment: a child process being spawned (by a test, say) holds a copy of the descriptor until
    /// it executes its program, and the `flock` lasts until every copy is closed.
    private static let held = Mutex<Set<String>>([])

    init(directory: String) throws(EventStoreError) {
        let path = directory + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw EventStoreError(.storage, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        let key = realpath(path, nil).map { resolved in
            defer { free(resolved) }
            return String(cString: resolved)
        } ?? path
        var attempts = 0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            let holder = String(decoding: buffer.prefix(max(0, n)), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if reason == EWOULDBLOCK && holder == "\(getpid())" && !Self.held.withLock({ $0.contains(key) })
                && attempts < 200 {
                // Released by this process, still held by a copy in a child about to exec: wait.
                attempts += 1
                usleep(10_000)
                continue
            }
            close(fd)
            if reason == EWOULDBLOCK {
                throw EventStoreError(
                    .writerLocked,
                    "data directory \(directory) is held for writing by another process"
                        + (holder.isEmpty ? "" : " (pid \(holder))")
                        + "; stop it, or open the directory read-only"
                )
            }
            throw EventStoreError(.storage, "cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        Self.held.withLock { _ = $0.insert(key) }
        self.fd = Mutex(fd)
        self.key = key
    }

    /// Releases the lock; later calls do nothing.
    func release() {
        fd.withLock { fd in
            if fd >= 0 {
                Self.held.withLock { _ = $0.remove(key) }
                close(fd)
            }
            fd = -1
        }
    }

    deinit {
        release()
    }
}
