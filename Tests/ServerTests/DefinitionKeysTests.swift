import RunlogJSON
import Foundation
import HTTPTypes
import Testing
import WorkflowModel
import Workflows

/// A key a definition does not have is refused when the draft is saved, naming its path and the
/// keys allowed there: a misspelt `"conditon"` must not leave a route that matches every run.
@Suite("Definitions: unknown keys")
struct DefinitionKeysTests {
    static func definition(route: JSONValue, trigger: JSONValue? = nil) -> JSONValue {
        ["trigger": trigger ?? ["kind": "api", "schema": ["fields": [["name": "amount", "type": "integer"]]]],
         "routes": [route, ["name": "else", "steps": [["step_uid": "ok", "type": "approve"]]]]]
    }

    @Test("unknown keys in routes, steps, triggers and schema fields are 422 naming the path and the allowed keys")
    func unknownKeys() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let created = try await client.call(.post, "/v1/workflows", key: server.admin, json: ["name": "Keys"])
                let id = try #require(created.json["id"]?.stringValue)
                let step: JSONValue = ["step_uid": "no", "type": "decline"]
                let cases: [(JSONValue, String, String)] = [
                    (Self.definition(route: ["name": "big", "if": ["parameters.amount": ["$gt": 100]], "steps": [step]]),
                     "routes[0].if", "condition, name, steps"),
                    (Self.definition(route: ["name": "big", "conditon": ["parameters.amount": ["$gt": 100]],
                                             "steps": [step]]),
                     "routes[0].conditon", "condition, name, steps"),
                    (Self.definition(route: ["name": "big", "condition": ["parameters.amount": ["$gt": 100]],
                                             "steps": [["step_uid": "no", "type": "decline", "param": [:]]]]),
                     "routes[0].steps[0].param", "parameters, step_uid, type"),
                    (Self.definition(route: ["name": "big", "condition": ["parameters.amount": ["$gt": 100]],
                                             "steps": [step]],
                                     trigger: ["kind": "api", "schema": ["fields": [["name": "amount", "type": "integer",
                                                                                     "requird": true]]]]),
                     "trigger.schema.fields[0].requird", "fields, items, name, required, type"),
                    (Self.definition(route: ["name": "big", "condition": ["parameters.amount": ["$gt": 100]],
                                             "steps": [step]],
                                     trigger: ["kind": "api", "schema": ["fields": []], "criteria": [:]]),
                     "trigger.criteria", "kind, schema, sticky_field"),
                ]
                for (definition, field, allowed) in cases {
                    let saved = try await client.call(.put, "/v1/workflows/\(id)/draft", key: server.admin, json: definition)
                    #expect(saved.status == .unprocessableContent, "\(field)")
                    #expect(saved.json["error"]?["field"]?.stringValue == field)
                    #expect(saved.json["error"]?["message"]?.stringValue?.contains("allowed: \(allowed)") == true,
                            "\(saved.json)")
                }
                // Nothing was saved.
                #expect(try await client.call(.get, "/v1/workflows/\(id)/draft", key: server.admin).status == .notFound)
                // The same definitions with the right keys save.
                let good = Self.definition(route: ["name": "big", "condition": ["parameters.amount": ["$gt": 100]],
                                                   "steps": [step]])
                #expect(try await client.call(.put, "/v1/workflows/\(id)/draft", key: server.admin, json: good).status
                        == .ok)
            }
        }
    }

    @Test("a condition path that cannot exist is 422 naming it and what is there; one known only at run time is saved with a warning")
    func conditionPaths() async throws {
        try await TestServer.with { server in
            try await server.test { client in
                let created = try await client.call(.post, "/v1/workflows", key: server.admin, json: ["name": "Paths"])
                let id = try #require(created.json["id"]?.stringValue)
                let step: JSONValue = ["step_uid": "no", "type": "decline"]
                let eventTrigger: JSONValue = ["kind": "event", "event_type": "inquiry.completed",
                                               "criteria": ["data.country": "FR"]]
                let cases: [(JSONValue, String, String)] = [
                    (Self.definition(route: ["name": "fr", "condition": ["event.data.score": ["$gt": 1]], "steps": [step]],
                                     trigger: eventTrigger),
                     "trigger.criteria.data.country", "its roots: event, object"),
                    (Self.definition(route: ["name": "big", "condition": ["parameters.amout": ["$gt": 100]],
                                             "steps": [step]]),
                     "routes[0].condition.parameters.amout", "its fields: amount"),
                    (Self.definition(route: ["name": "big", "condition": ["$or": [["object.data.score": 1],
                                                                                  ["parameters.amount": 2]]],
                                             "steps": [step]]),
                     "routes[0].condition.object.data.score", "its roots: apicontent, custom_data, parameters, run"),
                    // A key the engine never puts in `run` or `event`, and a path below a scalar parameter.
                    (Self.definition(route: ["name": "done", "condition": ["run.status": "completed"], "steps": [step]]),
                     "routes[0].condition.run.status", "its keys: arm, id, version, workflow_id"),
                    (Self.definition(route: ["name": "fr", "condition": ["event.payload.country": "FR"], "steps": [step]],
                                     trigger: ["kind": "event", "event_type": "inquiry.completed"]),
                     "routes[0].condition.event.payload.country", "its keys: data, occurred_at, type"),
                    (Self.definition(route: ["name": "big", "condition": ["parameters.amount.value": ["$gt": 100]],
                                             "steps": [step]]),
                     "routes[0].condition.parameters.amount.value", "goes below parameters.amount, a field of type integer"),
                    // Nested schema fields are walked: an object field's sub-field must exist.
                    (Self.definition(route: ["name": "paris", "condition": ["parameters.address.town": "Paris"],
                                             "steps": [step]],
                                     trigger: ["kind": "api", "schema": ["fields": [
                                         ["name": "address", "type": "object",
                                          "fields": [["name": "city", "type": "string"]]]]]]),
                     "routes[0].condition.parameters.address.town", "its fields: city"),
                ]
                for (definition, field, listed) in cases {
                    let saved = try await client.call(.put, "/v1/workflows/\(id)/draft", key: server.admin, json: definition)
                    #expect(saved.status == .unprocessableContent, "\(field)")
                    #expect(saved.json["error"]?["field"]?.stringValue == field, "\(saved.json)")
                    #expect(saved.json["error"]?["message"]?.stringValue?.contains(listed) == true, "\(saved.json)")
                }
                // Paths into data known only at run time are accepted.
                let fine = Self.definition(route: ["name": "fr", "condition": ["object.data.anything.at.all": 1],
                                                   "steps": [step]],
                                           trigger: ["kind": "event", "event_type": "inquiry.completed",
                                                     "criteria": ["event.data.country": "FR"]])
                let saved = try await client.call(.put, "/v1/workflows/\(id)/draft", key: server.admin, json: fine)
                #expect(saved.status == .ok, "\(saved.json)")
                // ... each with a warning in the answer, naming where it is and why it was not checked.
                let warnings = saved.json["warnings"]?.arrayValue ?? []
                #expect(warnings.compactMap { $0["field"]?.stringValue }
                        == ["trigger.criteria.event.data.country", "routes[0].condition.object.data.anything.at.all"],
                        "\(saved.json)")
                #expect(warnings.first?["message"]?.stringValue?.contains("event.data is the event's data, known only at run time")
                        == true, "\(warnings)")
                // A list parameter's elements, and a batch task's roots, are also known only at run time.
                let lists = Self.definition(route: ["name": "vip", "condition": ["$and": [["parameters.tags.0": "vip"],
                                                                                         ["custom_data.plan": "pro"],
                                                                                         ["parameters.amount": 3]]],
                                                    "steps": [step]],
                                            trigger: ["kind": "api", "schema": ["fields": [
                                                ["name": "tags", "type": "array", "items": "string"],
                                                ["name": "amount", "type": "integer"]]]])
                let listSaved = try await client.call(.put, "/v1/workflows/\(id)/draft", key: server.admin, json: lists)
                #expect(listSaved.status == .ok, "\(listSaved.json)")
                #expect((listSaved.json["warnings"]?.arrayValue ?? []).compactMap { $0["field"]?.stringValue }
                        == ["routes[0].condition.custom_data.plan", "routes[0].condition.parameters.tags.0"],
                        "\(listSaved.json)")
                // The draft read back carries the same warnings; a definition with checked paths only has none.
                let read = try await client.call(.get, "/v1/workflows/\(id)/draft", key: server.admin)
                #expect(read.json["warnings"] == listSaved.json["warnings"])
                let checked = Self.definition(route: ["name": "big", "condition": ["parameters.amount": ["$gt": 100],
                                                                                   "run.arm": "treatment"],
                                                      "steps": [step]])
                let clean = try await client.call(.put, "/v1/workflows/\(id)/draft", key: server.admin, json: checked)
                #expect(clean.status == .ok, "\(clean.json)")
                #expect(clean.json["warnings"] == .array([]))
            }
        }
    }
}
