import HTTPTypes
import EventLog
import Hummingbird
import WorkflowModel
import Workflows

/// Workflows, drafts, versions and rollouts.
extension RunlogAPI {
    func addWorkflowRoutes(to router: RouterGroup<Context>) {
        router.post("workflows") { request, context in
            try await command(request, context, .write, allowed: ["name"]) { body in
                let workflow = try await engine.createWorkflow(name: try body.requiredString("name"), actor: context.actor)
                return Answer(Representation.workflow(workflow), status: .created,
                              headers: [.location: "/v1/workflows/\(workflow.id)", .eTag: etag(workflow.streamVersion)])
            }
        }
        router.get("workflows") { request, context in
            try context.require(.read)
            let list = await engine.read { state in
                state.workflows.values.sorted { $0.number < $1.number }.map(Representation.workflow)
            }
            return Answer(["workflows": .array(list)])
        }
        router.get("workflows/{id}") { request, context in
            try context.require(.read)
            let workflow = try await self.workflow(context)
            return Answer(Representation.workflow(workflow), headers: [.eTag: etag(workflow.streamVersion)])
        }

        // Drafts: the ETag is the draft's version, and If-Match on a save must equal it.
        router.get("workflows/{id}/draft") { request, context in
            try context.require(.read)
            let workflow = try await self.workflow(context)
            guard let draft = workflow.draft else { throw APIError.notFound("workflow \(workflow.id) has no draft") }
            return Answer(Representation.draft(workflow.id, draft), headers: [.eTag: etag(draft.version)])
        }
        router.put("workflows/{id}/draft") { request, context in
            let expected = try request.ifMatch()
            return try await command(request, context, .write, allowed: nil) { body in
                guard let definition = body.raw else {
                    throw APIError.badRequest("the body must be the workflow definition, a JSON object", field: "body")
                }
                let draft = try await engine.saveDraft(workflowId: try context.parameters.require("id"),
                                                       definition: definition, expectedDraftVersion: expected.map(Int.init),
                                                       actor: context.actor)
                return Answer(Representation.draft(try context.parameters.require("id"), draft),
                              headers: [.eTag: etag(draft.version)])
            }
        }

        // Versions.
        router.get("workflows/{id}/versions") { request, context in
            try context.require(.read)
            let workflow = try await self.workflow(context)
            let versions = workflow.versions.map { Representation.version(workflow, $0, definition: false) }
            return Answer(["workflow_id": .string(workflow.id), "active_version": Representation.int(workflow.active),
                           "rollout": workflow.rollout.map(Representation.rollout) ?? .null,
                           "versions": .array(versions)],
                          headers: [.eTag: etag(workflow.streamVersion)])
        }
        router.get("workflows/{id}/versions/{version}") { request, context in
            try context.require(.read)
            let workflow = try await self.workflow(context)
            let version = try Self.versionParameter(context)
            guard version >= 1, version <= workflow.latestVersion else {
                throw APIError.notFound("workflow \(workflow.id) has no version \(version)")
            }
            return Answer(Representation.version(workflow, workflow.versions[version - 1], definition: true),
                          headers: [.eTag: etag(workflow.streamVersion)])
        }
        router.post("workflows/{id}/versions") { request, context in
            let ifMatch = try request.ifMatch()
            return try await command(request, context, .write,
                                     allowed: ["description", "activate", "rollout_percentage", "sticky_field"]) { body in
                let id = try context.parameters.require("id")
                let version = try await engine.publish(
                    workflowId: id, description: try body.string("description") ?? "",
                    activate: try body.bool("activate") ?? false,
                    rolloutPercentage: try body.number("rollout_percentage"),
                    stickyField: try body.string("sticky_field"), actor: context.actor, ifMatch: ifMatch)
                return try await versionAnswer(id, version.version, status: .created)
            }
        }
        router.patch("workflows/{id}/versions/{version}") { request, context in
            let ifMatch = try request.ifMatch()
            return try await command(request, context, .write, allowed: ["description"]) { body in
                let id = try context.parameters.require("id")
                let version = try await engine.editDescription(
                    workflowId: id, version: try Self.versionParameter(context),
                    description: try body.requiredString("description"), actor: context.actor, ifMatch: ifMatch)
                return try await versionAnswer(id, version.version, status: .ok)
            }
        }
        router.post("workflows/{id}/versions/{version}/activate") { request, context in
            let ifMatch = try request.ifMatch()
            return try await command(request, context, .write, allowed: []) { _ in
                let workflow = try await engine.activate(workflowId: try context.parameters.require("id"),
                                                         version: try Self.versionParameter(context),
                                                         actor: context.actor, ifMatch: ifMatch)
                return workflowAnswer(workflow)
            }
        }
        router.post("workflows/{id}/deactivate") { request, context in
            let ifMatch = try request.ifMatch()
            return try await command(request, context, .write, allowed: []) { _ in
                let workflow = try await engine.deactivate(workflowId: try context.parameters.require("id"),
                                                           actor: context.actor, ifMatch: ifMatch)
                return workflowAnswer(workflow)
            }
        }
        router.post("workflows/{id}/revert") { request, context in
            let ifMatch = try request.ifMatch()
            return try await command(request, context, .admin, allowed: ["to", "activate"]) { body in
                let id = try context.parameters.require("id")
                let version = try await engine.revert(workflowId: id, to: try body.requiredInt("to"),
                                                      activate: try body.bool("activate") ?? false,
                                                      actor: context.actor, ifMatch: ifMatch)
                return try await versionAnswer(id, version.version, status: .created)
            }
        }

        // Rollouts.
        router.get("workflows/{id}/rollout") { request, context in
            try context.require(.read)
            let workflow = try await self.workflow(context)
            guard let rollout = workflow.rollout else {
                throw APIError.notFound("workflow \(workflow.id) has no rollout in progress")
            }
            return Answer(Representation.rollout(rollout), headers: [.eTag: etag(workflow.streamVersion)])
        }
        router.get("workflows/{id}/rollouts") { request, context in
            try context.require(.read)
            let workflow = try await self.workflow(context)
            let all = workflow.pastRollouts + (workflow.rollout.map { [$0] } ?? [])
            return Answer(["rollouts": .array(all.map(Representation.rollout))])
        }
        router.post("workflows/{id}/rollout") { request, context in
            let ifMatch = try request.ifMatch()
            return try await command(request, context, .write, allowed: ["version", "percentage", "sticky_field"]) { body in
                let workflow = try await engine.stageRollout(
                    workflowId: try context.parameters.require("id"), version: try body.requiredInt("version"),
                    percentage: try body.requiredNumber("percentage"), stickyField: try body.string("sticky_field"),
                    actor: context.actor, ifMatch: ifMatch)
                return workflowAnswer(workflow, status: .created)
            }
        }
        router.patch("workflows/{id}/rollout") { request, context in
            let ifMatch = try request.ifMatch()
            return try await command(request, context, .write, allowed: ["percentage"]) { body in
                let workflow = try await engine.setRolloutPercentage(
                    workflowId: try context.parameters.require("id"), percentage: try body.requiredNumber("percentage"),
                    actor: context.actor, ifMatch: ifMatch)
                return workflowAnswer(workflow)
            }
        }
        for (action, percentage) in [("promote", 100.0), ("end", 0.0)] {
            router.post("workflows/{id}/rollout/\(action)") { request, context in
                let ifMatch = try request.ifMatch()
                return try await command(request, context, .write, allowed: []) { _ in
                    let workflow = try await engine.setRolloutPercentage(
                        workflowId: try context.parameters.require("id"), percentage: percentage,
                        actor: context.actor, ifMatch: ifMatch)
                    return workflowAnswer(workflow)
                }
            }
        }
    }

    func workflow(_ context: Context) async throws -> WorkflowRecord {
        let id = try context.parameters.require("id")
        guard let workflow = await engine.read({ $0.workflows[id] }) else {
            throw APIError.notFound("workflow \(id) does not exist")
        }
        return workflow
    }

    static func versionParameter(_ context: Context) throws -> Int {
        let text = try context.parameters.require("version")
        guard let version = Int(text), version >= 1 else {
            throw APIError.badRequest("the version in the path must be a positive integer", field: "version", value: text)
        }
        return version
    }

    func workflowAnswer(_ workflow: WorkflowRecord, status: HTTPResponse.Status = .ok) -> Answer {
        Answer(Representation.workflow(workflow), status: status, headers: [.eTag: etag(workflow.streamVersion)])
    }

    func versionAnswer(_ id: String, _ version: Int, status: HTTPResponse.Status) async throws -> Answer {
        guard let workflow = await engine.read({ $0.workflows[id] }), version <= workflow.latestVersion else {
            throw APIError.notFound("workflow \(id) has no version \(version)")
        }
        return Answer(Representation.version(workflow, workflow.versions[version - 1], definition: true),
                      status: status,
                      headers: [.location: "/v1/workflows/\(id)/versions/\(version)", .eTag: etag(workflow.streamVersion)])
    }
}
