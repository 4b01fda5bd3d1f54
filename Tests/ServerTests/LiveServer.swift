import RunlogJSON
import Access
import EventLog
import LMDBStore
import Foundation
import Hummingbird
import Logging
import RunlogHTTP
import RunlogTestSupport
import ServiceLifecycle
import WorkflowModel
import Workflows

/// The real server (`buildApplication`, as `runlog serve` builds it) on a loopback port and a
/// fresh data directory, for tests that need real sockets: connection limits, timeouts, clients
/// that write their whole body before reading.
final class LiveServer: AsyncClosable {
    let directory: String
    let port: Int
    let admin: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    init(configure: (inout ServerConfiguration) -> Void = { _ in }) async throws {
        let directory = TemporaryDirectory.uniquePath("runlog-live")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let store = try LMDBEventStore(directory: directory)
        let key = KeyEvent.make(role: .admin, name: "live test admin")
        _ = try await store.append(to: KeyEvent.stream, [key.event])
        store.close()
        var configuration = ServerConfiguration(dataDirectory: directory, port: 0)
        configure(&configuration)
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = try await buildApplication(configuration, store: try LMDBEventStore(directory: directory),
                                             logger: Logger(label: "live", factory: { _ in
            SwiftLogNoOpLogHandler()
        })) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "live")))
        self.group = group
        task = Task { try await group.run() }
        var port = 0
        for await bound in ports { port = bound }
        self.directory = directory
        self.port = port
        self.admin = key.key
    }

    /// Runs `body` with a fresh server, and stops it (awaited) whether `body` succeeds or throws.
    static func with(configure: (inout ServerConfiguration) -> Void = { _ in },
                     _ body: (LiveServer) async throws -> Void) async throws {
        try await LiveServer(configure: configure).closing(body)
    }

    func close() async { await stop() }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Runs blocking work on a thread of its own, off the cooperative pool that the server's
/// handlers need (a blocked pool on 2 cores would stall the server under test).
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A blocking TCP client on loopback, for exact bytes on the wire; call it through `offPool`.
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw TestFailure("connect: errno \(code)")
        }
    }

    deinit { close(fd) }

    /// Sends all of `bytes`; false when the peer closed or reset the connection.
    @discardableResult
    func send(_ bytes: [UInt8]) async -> Bool {
        (try? await offPool { self.blockingSend(bytes) }) ?? false
    }

    @discardableResult
    func send(_ text: String) async -> Bool { await send(Array(text.utf8)) }

    /// Reads until the peer closes the connection or `timeout` passes; `closed` says which.
    func readAll(timeout: Double) async -> (bytes: [UInt8], closed: Bool) {
        (try? await offPool { self.blockingReadAll(timeout: timeout) }) ?? ([], false)
    }

    /// Reads one response with a `Content-Length` body (or none), or nil after `timeout`.
    func readResponse(timeout: Double) async -> RawResponse? {
        (try? await offPool { self.blockingReadResponse(timeout: timeout) }) ?? nil
    }

    private func blockingSend(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    private func blockingReadAll(timeout: Double) -> (bytes: [UInt8], closed: Bool) {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return (out, false) }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, left * 1000)))
            if ready <= 0 { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (out, true) }
            out.append(contentsOf: buffer[0..<n])
        }
    }

    private func blockingReadResponse(timeout: Double) -> RawResponse? {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while deadline.timeIntervalSinceNow > 0 {
            if let response = RawResponse(out) { return response }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return RawResponse(out) }
            out.append(contentsOf: buffer[0..<n])
        }
        return RawResponse(out)
    }
}

/// One HTTP/1.1 response parsed from raw bytes (interim 1xx answers are kept apart).
struct RawResponse: Sendable {
    var interim: [Int] = []
    var status: Int
    var headers: [String: String]
    var body: String

    /// `headOnly`: the answer to a HEAD request, whose Content-Length describes a body not sent.
    init?(_ bytes: [UInt8], headOnly: Bool = false) {
        var rest = bytes[...]
        while true {
            guard let end = Self.headerEnd(rest) else { return nil }
            let head = String(decoding: rest[rest.startIndex..<end], as: UTF8.self)
            rest = rest[(end + 4)...]
            let lines = head.components(separatedBy: "\r\n")
            let parts = lines[0].split(separator: " ")
            guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...]
                    .trimmingCharacters(in: .whitespaces)
            }
            if (100..<200).contains(status) {
                interim.append(status)
                continue
            }
            let length = headOnly ? 0 : headers["content-length"].flatMap { Int($0) } ?? 0
            guard rest.count >= length else { return nil }
            self.status = status
            self.headers = headers
            self.body = String(decoding: rest.prefix(length), as: UTF8.self)
            return
        }
    }

    private static func headerEnd(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= 4 else { return nil }
        var i = bytes.startIndex
        while i + 3 < bytes.endIndex {
            if bytes[i] == 13, bytes[i + 1] == 10, bytes[i + 2] == 13, bytes[i + 3] == 10 { return i }
            i += 1
        }
        return nil
    }

    var json: JSONValue? { try? JSONValue(parsing: Array(body.utf8)) }
}
