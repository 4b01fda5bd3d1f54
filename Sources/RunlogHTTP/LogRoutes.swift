import HTTPTypes
import EventLog
import Hummingbird
import ServiceLifecycle
import WorkflowModel
import Workflows

/// The log: pages of it, and a live Server-Sent Events feed.
extension RunlogAPI {
    func addLogRoutes(to router: RouterGroup<Context>) {
        router.get("log") { request, context in
            try context.require(.read)
            let filter = try Self.logFilter(request)
            let backward = try Self.flag(request, "backward")
            let limit = try request.queryInt("limit", Int.self, in: 1...1000) ?? 100
            let from = try request.queryInt("from", UInt64.self, in: 1...Self.maxPosition)
            let events = try store.readAll(from: from, direction: backward ? .backward : .forward, filter: filter,
                                           limit: limit)
            var next = "null"
            if events.count == limit, let last = events.last {
                next = backward ? (last.position > 1 ? String(last.position - 1) : "null") : String(last.position + 1)
            }
            let head = try store.head().position
            let body = "{\"events\":[" + events.map { $0.jsonLine() }.joined(separator: ",") + "],\"next\":\(next),"
                + "\"head_position\":\(head)}"
            return Answer(status: .ok, headers: [.contentType: "application/json"], body: body)
        }

        // Catch-up then live, from `from` or just after `Last-Event-ID`; each event's `id:` is its
        // position, so a client that reconnects with Last-Event-ID misses nothing and repeats nothing.
        router.get("log/stream") { request, context in
            try context.require(.read)
            let filter = try Self.logFilter(request)
            var from = try request.queryInt("from", UInt64.self, in: 1...Self.maxPosition) ?? 1
            if let last = request.headers[Self.lastEventID] {
                guard let position = UInt64(last.trimmingCharacters(in: .whitespaces)), position < Self.maxPosition else {
                    throw APIError.badRequest("Last-Event-ID must be a log position from 0 to \(Self.maxPosition - 1)",
                                              field: "Last-Event-ID", value: last)
                }
                from = position + 1
            }
            let events = store.subscribe(from: from, filter: filter).cancelOnGracefulShutdown()
            let start = from
            let body = ResponseBody { writer in
                try await writer.write(ByteBuffer(string: ": runlog log from \(start)\n\n"))
                for try await event in events {
                    try await writer.write(ByteBuffer(
                        string: "id: \(event.position)\nevent: \(event.type)\ndata: \(event.jsonLine())\n\n"))
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                            body: body)
        }
    }

    static let lastEventID = HTTPField.Name("Last-Event-ID")!
    /// The largest log position a request may name: positions are JSON integers, exact up to 2^63 - 1.
    static let maxPosition = UInt64(Int64.max)

    static func logFilter(_ request: Request) throws -> EventFilter {
        let types = request.uri.queryParameters.getAll("type").flatMap { $0.split(separator: ",").map(String.init) }
        return EventFilter(types: types.isEmpty ? nil : Set(types), streamPrefix: request.query("stream_prefix"))
    }

    static func flag(_ request: Request, _ name: String) throws -> Bool {
        guard let text = request.query(name) else { return false }
        switch text {
        case "true", "1": return true
        case "false", "0": return false
        default: throw APIError.badRequest("\(name) must be true or false", field: name, value: text)
        }
    }
}
