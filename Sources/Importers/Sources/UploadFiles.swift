import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the importer service writes uploaded files. Every upload goes through one, so a test can
/// give the service a disk that fills up (the real one is `DiskUploadFiles`).
public protocol UploadFiles: Sendable {
    /// Creates `path` (it must not exist) for writing.
    func create(_ path: String) throws(UploadIOError) -> any UploadFile
}

/// One file being written by an upload.
public protocol UploadFile: AnyObject {
    /// Appends `bytes` (all of them, or throws).
    func write(_ bytes: [UInt8]) throws(UploadIOError)
    /// Makes what was written durable (`fsync`).
    func synchronize() throws(UploadIOError)
    /// Closes the file; safe to call again.
    func close() throws(UploadIOError)
}

/// A failed file operation of an upload, with its `errno`.
public struct UploadIOError: Error, Sendable, CustomStringConvertible {
    /// The C error number (`ENOSPC`, `EDQUOT`, `EIO` …).
    public var errno: Int32
    /// What was being done: `create`, `write`, `fsync`, `close`.
    public var operation: String

    /// An error of `operation` with the C error number `errno`.
    public init(errno: Int32, operation: String) {
        self.errno = errno
        self.operation = operation
    }

    /// The disk (or the user's quota on it) is full: `ENOSPC` or `EDQUOT`.
    public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }

    /// The operation and the system's text for the error, e.g. `write failed: No space left on device (errno 28)`.
    public var description: String {
        "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Uploaded files on the local disk, written with `open`/`write`/`fsync`/`close` so a failure
/// keeps its `errno` (a full disk is told apart from other failures).
public struct DiskUploadFiles: UploadFiles {
    /// The local disk.
    public init() {}

    /// Creates `path` with `O_CREAT | O_EXCL` (mode 0644 less the umask).
    public func create(_ path: String) throws(UploadIOError) -> any UploadFile {
        let fd = path.withCString { systemOpen($0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) }
        guard fd >= 0 else { throw UploadIOError(errno: errno, operation: "create") }
        return DiskUploadFile(fd)
    }
}

final class DiskUploadFile: UploadFile {
    private var fd: Int32

    init(_ fd: Int32) {
        self.fd = fd
    }

    deinit {
        if fd >= 0 { _ = systemClose(fd) }
    }

    func write(_ bytes: [UInt8]) throws(UploadIOError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { raw in
                systemWrite(fd, raw.baseAddress! + offset, raw.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw UploadIOError(errno: errno, operation: "write")
            }
            offset += written
        }
    }

    func synchronize() throws(UploadIOError) {
        guard fsync(fd) == 0 else { throw UploadIOError(errno: errno, operation: "fsync") }
    }

    func close() throws(UploadIOError) {
        guard fd >= 0 else { return }
        let result = systemClose(fd)
        fd = -1
        guard result == 0 else { throw UploadIOError(errno: errno, operation: "close") }
    }
}

private func systemOpen(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 {
    #if canImport(Glibc)
    Glibc.open(path, flags, mode)
    #else
    Darwin.open(path, flags, mode)
    #endif
}

private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, bytes, count)
    #else
    Darwin.write(fd, bytes, count)
    #endif
}

private func systemClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    Glibc.close(fd)
    #else
    Darwin.close(fd)
    #endif
}
