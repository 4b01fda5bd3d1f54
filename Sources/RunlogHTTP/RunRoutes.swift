import RunlogJSON
import HTTPTypes
import EventLog
import Foundation
import Hummingbird
import WorkflowModel
import Workflows

/// Runs, object events, objects and lists.
extension RunlogAPI {
    func addRunRoutes(to router: RouterGroup<Context>) {
        router.post("workflows/{id}/runs") { request, context in
            try await command(request, context, .write, allowed: ["parameters", "queue"]) { body in
                let run = try await engine.startRun(
                    workflowId: try context.parameters.require("id"), parameters: body.value("parameters") ?? [:],
                    queue: try Self.queue(body), actor: context.actor)
                return Self.runAnswer(run, status: .created)
            }
        }
        router.post("workflows/{id}/actions") { request, context in
            try await command(request, context, .write, allowed: ["object_token", "inputs", "queue"]) { body in
                let run = try await engine.runAction(
                    workflowId: try context.parameters.require("id"), objectToken: try body.requiredString("object_token"),
                    inputs: body.value("inputs") ?? [:], queue: try Self.queue(body), actor: context.actor)
                return Self.runAnswer(run, status: .created)
            }
        }
        router.get("workflows/{id}/runs") { request, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            var status: RunRecord.Status?
            if let text = request.query("status") {
                guard let value = RunRecord.Status(rawValue: text) else {
                    throw APIError.badRequest("status must be one of "
                                              + RunRecord.Status.allCases.map(\.rawValue).joined(separator: ", "),
                                              field: "status", value: text)
                }
                status = value
            }
            var arm: Arm?
            if let text = request.query("arm") {
                guard let value = Arm(rawValue: text) else {
                    throw APIError.badRequest("arm must be one of treatment, control, none", field: "arm", value: text)
                }
                arm = value
            }
            let version = try request.queryInt("version", Int.self, in: 1...Int(Int32.max))
            let limit = try request.queryInt("limit", Int.self, in: 1...1000) ?? 100
            let after = request.query("after")
            guard await engine.read({ $0.workflows[id] != nil }) else {
                throw WorkflowError(.notFound, "workflow \(id) does not exist")
            }
            let page = try await engine.listRuns(of: id, status: status, arm: arm, version: version, after: after,
                                                 limit: limit + 1)
            let runs = try engine.detailed(Array(page.prefix(limit)))
            let next: JSONValue = page.count > limit ? .string(runs.last!.id) : .null
            return Answer(["runs": .array(runs.map(Representation.run)), "next_after": next])
        }
        router.get("runs/{id}") { request, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            guard let run = try await engine.run(id) else { throw APIError.notFound("run \(id) does not exist") }
            return Answer(Representation.run(try engine.detailed(run)))
        }

        router.post("events") { request, context in
            try await command(request, context, .write,
                              allowed: ["id", "type", "object_type", "object_token", "data", "occurred_at", "queue"]) { body in
                var occurredAt: Int64?
                if let value = body.value("occurred_at") {
                    guard let ms = Self.milliseconds(value), JSONText.timestampRange.contains(ms) else {
                        throw APIError.invalid(field: "occurred_at", value: value,
                                               rule: "must be an RFC 3339 time or UTC milliseconds, from "
                                                   + "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z")
                    }
                    occurredAt = ms
                }
                let posted = try await engine.postEvent(
                    objectType: try body.requiredString("object_type"), objectToken: try body.requiredString("object_token"),
                    eventType: try body.requiredString("type"), data: body.value("data") ?? [:], occurredAt: occurredAt,
                    eventId: try body.string("id"), queue: try Self.queue(body), actor: context.actor)
                return Answer(["event_id": .string(posted.eventId), "run_ids": .array(posted.runIds.map(JSONValue.string)),
                               "duplicate": .bool(posted.duplicate)],
                              status: posted.duplicate ? .ok : .created)
            }
        }
        router.get("objects/{type}/{token}") { request, context in
            try context.require(.read)
            let type = try context.parameters.require("type"), token = try context.parameters.require("token")
            guard let object = await engine.objectView(type: type, token: token) else {
                throw APIError.notFound("\(type) \(token) does not exist")
            }
            return Answer(Representation.object(object))
        }
        router.get("lists") { _, context in
            try context.require(.read)
            let lists = await engine.read { state in
                state.lists.keys.sorted().map { id -> JSONValue in
                    ["id": .string(id), "size": .integer(Int64(state.lists[id]?.count ?? 0))]
                }
            }
            return Answer(["lists": .array(lists)])
        }
        router.get("lists/{id}") { _, context in
            try context.require(.read)
            let id = try context.parameters.require("id")
            guard let members = await engine.read({ $0.lists[id] }) else { throw APIError.notFound("list \(id) does not exist") }
            let values = members.sorted { $0.jsonText < $1.jsonText }
            return Answer(["id": .string(id), "size": .integer(Int64(values.count)), "values": .array(values)])
        }
    }

    static func queue(_ body: BodyFields) throws -> RunQueue {
        guard let text = try body.string("queue") else { return .realtime }
        guard let queue = RunQueue(rawValue: text) else {
            throw APIError.invalid(field: "queue", value: .string(text), rule: "must be realtime or batch")
        }
        return queue
    }

    static func runAnswer(_ run: RunRecord, status: HTTPResponse.Status) -> Answer {
        Answer(Representation.run(run), status: status, headers: [.location: "/v1/runs/\(run.id)"])
    }

    /// UTC milliseconds from an integer or an RFC 3339 time.
    static func milliseconds(_ value: JSONValue) -> Int64? {
        switch value {
        case .integer(let ms): return ms
        case .string(let text):
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if let date = formatter.date(from: text) { return Int64(exactly: (date.timeIntervalSince1970 * 1000).rounded()) }
            formatter.formatOptions = [.withInternetDateTime]
            return formatter.date(from: text).flatMap { Int64(exactly: ($0.timeIntervalSince1970 * 1000).rounded()) }
        default: return nil
        }
    }
}
