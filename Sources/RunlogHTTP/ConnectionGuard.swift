import RunlogJSON
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import Synchronization
import WorkflowModel
import Workflows

/// What the server allows one connection: how long it may idle or dribble, how many may be open,
/// and how much of an unwanted body it reads after answering early. Documented in docs/http.md.
public struct ConnectionLimits: Sendable {
    /// A connection that has no request in progress (idle between requests, or still sending a
    /// request's line and headers) is closed after this long.
    public var idleTimeout: Duration = .seconds(60)
    /// A request body that sends nothing for this long closes its connection.
    public var bodyTimeout: Duration = .seconds(30)
    /// After `bodyGrace`, a request body must have arrived at this many bytes per second on average.
    public var minBodyBytesPerSecond = 1_024
    public var bodyGrace: Duration = .seconds(10)
    /// Open connections at most. A new connection beyond it closes the connection that has been idle
    /// longest; when none is idle the new one is closed.
    public var maxConnections: Int
    /// After an answer given before the request's body was read (413, 401, 400…), the rest of the
    /// body is read and thrown away, at most this many bytes and for at most `lingerTime`, so that a
    /// client that writes its whole body before reading gets the answer; then the connection closes.
    public var lingerBytes = 64 * 1024 * 1024
    public var lingerTime: Duration = .seconds(5)

    public init(maxConnections: Int = ConnectionLimits.defaultMaxConnections) {
        self.maxConnections = maxConnections
    }

    /// 10,000, or half the process's descriptor limit when that is lower (but at least 64).
    public static var defaultMaxConnections: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1_000 }
        let descriptors = Int(clamping: limit.rlim_cur)
        return max(64, min(10_000, descriptors / 2))
    }

    /// The HTTP/1.1 server with these limits in its pipeline, for `Application(server:)`.
    func server(registry: ConnectionRegistry, logger: Logger) -> HTTPServerBuilder {
        let limits = self
        return .http1(configuration: .init(
            additionalChannelHandlers: [ConnectionGuard(limits: limits, registry: registry, logger: logger)],
            idleTimeout: ConnectionGuard.timeAmount(limits.idleTimeout)
        ))
    }
}

/// Raises the soft limit of open descriptors to the hard limit (as Go's runtime does), so that the
/// connection cap, not the descriptor table, is what a crowd of idle clients meets first.
public func raiseDescriptorLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// The open connections of one server, with which of them are idle and in what order they
/// became idle (a counter, not a clock: no clock read per request).
final class ConnectionRegistry: Sendable {
    private struct Entry {
        let channel: any Channel
        /// When the connection last became idle, in `State.tick`s; nil while busy.
        var idleSince: UInt64?
    }
    private struct State {
        var nextId = 0
        var tick: UInt64 = 0
        var entries: [Int: Entry] = [:]
    }
    private let state = Mutex(State())
    let maxConnections: Int

    init(maxConnections: Int) {
        self.maxConnections = max(1, maxConnections)
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Registers a new connection; nil when it must be closed (every connection is busy). At the
    /// cap, the connection idle longest is closed to make room.
    func open(_ channel: any Channel) -> Int? {
        let (id, evicted): (Int?, (any Channel)?) = state.withLock { state in
            var evicted: (any Channel)?
            if state.entries.count >= maxConnections {
                var oldest: (id: Int, since: UInt64)?
                for (id, entry) in state.entries {
                    if let since = entry.idleSince, oldest.map({ since < $0.since }) ?? true { oldest = (id, since) }
                }
                guard let oldest else { return (nil, nil) }
                evicted = state.entries.removeValue(forKey: oldest.id)?.channel
            }
            state.nextId += 1
            state.tick += 1
            state.entries[state.nextId] = Entry(channel: channel, idleSince: state.tick)
            return (state.nextId, evicted)
        }
        evicted?.close(promise: nil)
        return id
    }

    func setIdle(_ id: Int, _ idle: Bool) {
        state.withLock { state in
            guard state.entries[id] != nil else { return }
            state.tick += 1
            state.entries[id]!.idleSince = idle ? state.tick : nil
        }
    }

    func close(_ id: Int) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }
}

/// Guards one HTTP/1.1 connection, between the HTTP codec and Hummingbird's request handling:
/// counts it against the connection cap, times out slow bodies, answers `Expect: 100-continue`,
/// gives malformed requests the JSON error shape, and after an early answer reads and discards
/// the rest of the body before it closes the connection (a lingering close).
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let limits: ConnectionLimits
    private let registry: ConnectionRegistry
    private let logger: Logger
    private var id: Int?

    /// Request heads and ends read, and answers ended, on this connection. Pipelined requests
    /// can be read ahead of the answers: the request being answered is number `answered`.
    private var heads = 0
    private var ends = 0
    private var answered = 0
    /// A request's head was read and its end not yet.
    private var requestOpen: Bool { heads > ends }
    /// The final answer to the request being answered has begun.
    private var responding = false
    /// The answer began before the request was read to its end: the connection closes after it.
    private var answeredEarly = false
    /// The HTTP decoder failed: nothing more can be read from this connection.
    private var parseFailed = false
    /// Reading and throwing away the rest of a body after an early answer.
    private var discarding = false
    private var discarded = 0
    /// Seconds the body check has seen the current body open, and the bytes it had at the check
    /// before (no clock is read per request: the check counts its own one-second ticks).
    private var bodySeconds = 0
    private var stalledSeconds = 0
    private var bytesAtLastCheck = 0
    private var bodyBytes = 0
    /// The request being read declared a body (Content-Length above 0, or chunked).
    private var expectsBody = false
    private var timer: Scheduled<Void>?

    init(limits: ConnectionLimits, registry: ConnectionRegistry, logger: Logger) {
        self.limits = limits
        self.registry = registry
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard let id = registry.open(context.channel) else {
            logger.warning("connection refused: \(registry.maxConnections) connections are open and none is idle")
            context.close(promise: nil)
            return
        }
        self.id = id
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if let id { registry.close(id) }
        id = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if let id { registry.close(id) }
        id = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if discarding {
            if case .body(let buffer) = part { discarded += buffer.readableBytes }
            if case .end = part {
                ends += 1
                context.close(promise: nil)
            } else if discarded > limits.lingerBytes {
                context.close(promise: nil)
            }
            return
        }
        switch part {
        case .head(let head):
            heads += 1
            bodyBytes = 0
            bodySeconds = 0
            stalledSeconds = 0
            bytesAtLastCheck = 0
            if let id { registry.setIdle(id, false) }
            expectsBody = Self.hasBody(head)
            if head.headerFields[.expect]?.lowercased() == "100-continue", acceptsBody(head) {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            ends += 1
            timer?.cancel()
            timer = nil
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // While discarding, the request handler reads nothing more: keep the socket drained.
        if discarding { context.read() }
        // A body still arriving after this read gets its progress checked; most bodies arrive with
        // their head in one read and need no timer.
        if expectsBody, requestOpen, timer == nil { scheduleBodyCheck(context) }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var response) where response.status.kind != .informational:
            responding = true
            // Early: the request being answered has not been read to its end.
            if ends <= answered || parseFailed {
                answeredEarly = true
                response.headerFields[.connection] = "close"
                context.write(wrapOutboundOut(.head(response)), promise: promise)
                return
            }
        case .end:
            answered += 1
            responding = false
            if answeredEarly || parseFailed {
                context.writeAndFlush(data, promise: promise)
                finishEarlyAnswer(context)
                return
            }
            if let id, answered == heads, !requestOpen { registry.setIdle(id, true) }
        default:
            break
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        parseFailed = true
        if requestOpen && !discarding {
            // The request handler is reading this body: it fails with the error and answers 400.
            context.fireErrorCaught(error)
            return
        }
        guard answered == heads, !responding else {
            // An answer is still on its way: it goes out, then the connection closes (parseFailed).
            if discarding { context.close(promise: nil) }
            return
        }
        // No request is in progress (a bad request line or headers): answer here, in the JSON shape.
        let apiError = APIError.malformedRequest(parseError)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[.connection] = "close"
        let body = ByteBuffer(string: apiError.body.jsonText)
        headers[.contentLength] = String(body.readableBytes)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: apiError.status, headerFields: headers))),
                      promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    /// After an early answer: close at once if the body is all read or cannot be read, else read
    /// and discard the rest, bounded in bytes and time.
    private func finishEarlyAnswer(_ context: ChannelHandlerContext) {
        guard requestOpen, !parseFailed else {
            context.close(promise: nil)
            return
        }
        discarding = true
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: Self.timeAmount(limits.lingerTime)) {
            context.close(promise: nil)
        }
        context.read()
    }

    /// Checks a request body's progress every second while it is open.
    private func scheduleBodyCheck(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { [self] in
            timer = nil
            guard requestOpen, !discarding else { return }
            bodySeconds += 1
            stalledSeconds = bodyBytes == bytesAtLastCheck ? stalledSeconds + 1 : 0
            bytesAtLastCheck = bodyBytes
            if stalledSeconds >= Int(limits.bodyTimeout.components.seconds)
                || (bodySeconds > Int(limits.bodyGrace.components.seconds)
                    && bodyBytes < limits.minBodyBytesPerSecond * bodySeconds) {
                logger.info("closing a connection whose request body is too slow",
                            metadata: ["bytes": .stringConvertible(bodyBytes),
                                       "seconds": .stringConvertible(bodySeconds)])
                context.close(promise: nil)
                return
            }
            scheduleBodyCheck(context)
        }
    }

    private func acceptsBody(_ head: HTTPRequest) -> Bool {
        guard let length = head.headerFields[.contentLength].flatMap({ Int($0) }) else { return true }
        let upload = (head.path ?? "").hasPrefix("/v1/data-sources/csv")
        return length <= (upload ? RunlogAPI.uploadLimit : RunlogRequestContext.bodyLimit)
    }

    private static func hasBody(_ head: HTTPRequest) -> Bool {
        if let length = head.headerFields[.contentLength] { return length != "0" }
        return head.headerFields[.transferEncoding] != nil
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(Int64(clamping: seconds) &* 1_000_000_000 &+ attoseconds / 1_000_000_000)
    }
}

extension APIError {
    /// The answer to a request the HTTP parser refused.
    static func malformedRequest(_ error: HTTPParserError) -> APIError {
        switch error {
        case .headerOverflow:
            APIError(HTTPResponse.Status(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                     "header_too_large", "the request line and headers are larger than the limit of "
                     + "\(ServerLimits.maxHeaderBytes / 1024) KiB", field: "headers")
        case .invalidChunkSize:
            APIError(.badRequest, "bad_request", "malformed chunked body: invalid chunk size", field: "body")
        default:
            APIError(.badRequest, "bad_request", "malformed HTTP request: \(error)")
        }
    }
}

/// Limits of the HTTP parser.
enum ServerLimits {
    /// The request line and headers together (Hummingbird's default, 80 KiB).
    static let maxHeaderBytes = 80 * 1024
}
