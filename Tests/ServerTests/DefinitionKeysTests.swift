import Foundation
import HTTPTypes
import Testing
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
        let server = try await TestServer()
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
        await server.close()
    }
}
