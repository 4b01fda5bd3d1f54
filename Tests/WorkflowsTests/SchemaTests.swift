@testable import RunlogJSON
import Testing
@testable import WorkflowModel
@testable import Workflows

@Suite("Parameter schema")
struct SchemaTests {
    let schema = try! ParameterSchema(json: try! JSONValue(parsing: """
        {"fields": [
          {"name": "name", "type": "string", "required": true},
          {"name": "born", "type": "date"},
          {"name": "active", "type": "boolean"},
          {"name": "score", "type": "number"},
          {"name": "count", "type": "integer"},
          {"name": "tags", "type": "array", "items": "string"},
          {"name": "days", "type": "array", "items": "date"},
          {"name": "address", "type": "object", "fields": [
              {"name": "city", "type": "string", "required": true},
              {"name": "geo", "type": "object", "fields": [{"name": "lat", "type": "number"}]}]},
          {"name": "items", "type": "array_of_objects", "fields": [
              {"name": "sku", "type": "string", "required": true}, {"name": "qty", "type": "integer"}]}
        ]}
        """))

    func issues(_ json: String) throws -> [FieldIssue] { schema.validate(try JSONValue(parsing: json)) }

    @Test("valid values of every type pass")
    func valid() throws {
        #expect(try issues("""
            {"name": "Ada", "born": "1815-12-10", "active": true, "score": 12.5, "count": 3,
             "tags": ["a", "b"], "days": ["2024-02-29"], "address": {"city": "London", "geo": {"lat": 51.5}},
             "items": [{"sku": "x", "qty": 2}, {"sku": "y"}]}
            """).isEmpty)
        #expect(try issues(#"{"name": "Ada", "score": 12}"#).isEmpty) // an integer is a number
        #expect(try issues(#"{"name": "Ada", "born": null}"#).isEmpty) // null is absent
    }

    @Test("each bad value is named with its field, value and rule",
          arguments: [
            (#"{"name": 5}"#, "name", "5", "must be a string"),
            (#"{"name": "a", "born": "1815-13-10"}"#, "born", #""1815-13-10""#, "must be a date written YYYY-MM-DD"),
            (#"{"name": "a", "born": "2023-02-29"}"#, "born", #""2023-02-29""#, "must be a date written YYYY-MM-DD"),
            (#"{"name": "a", "born": "10/12/1815"}"#, "born", #""10/12/1815""#, "must be a date written YYYY-MM-DD"),
            (#"{"name": "a", "active": "true"}"#, "active", #""true""#, "must be true or false"),
            (#"{"name": "a", "score": "12.5"}"#, "score", #""12.5""#, "must be a number"),
            (#"{"name": "a", "count": 1.5}"#, "count", "1.5", "must be an integer"),
            (#"{"name": "a", "tags": "a"}"#, "tags", #""a""#, "must be an array of string"),
            (#"{"name": "a", "tags": ["a", 2]}"#, "tags[1]", "2", "must be a string"),
            (#"{"name": "a", "days": ["2024-01-01", "x"]}"#, "days[1]", #""x""#, "must be a date written YYYY-MM-DD"),
            (#"{"name": "a", "address": "London"}"#, "address", #""London""#, "must be an object"),
            (#"{"name": "a", "address": {"city": 1}}"#, "address.city", "1", "must be a string"),
            (#"{"name": "a", "address": {"city": "L", "geo": {"lat": "n"}}}"#, "address.geo.lat", #""n""#, "must be a number"),
            (#"{"name": "a", "items": [{"sku": "x"}, {"qty": 1}]}"#, "items[1].sku", nil, "is required (string)"),
            (#"{"name": "a", "items": [{"sku": "x", "qty": "2"}]}"#, "items[0].qty", #""2""#, "must be an integer"),
            (#"{"name": "a", "items": {"sku": "x"}}"#, "items", #"{"sku":"x"}"#, "must be an array of objects"),
            (#"{"name": "a", "extra": 1}"#, "extra", "1", "is not a field of the parameter schema"),
            (#"{}"#, "name", nil, "is required (string)"),
          ] as [(String, String, String?, String)])
    func invalid(json: String, field: String, value: String?, rule: String) throws {
        let found = try issues(json)
        #expect(found.contains(FieldIssue(field: field, value: value, rule: rule)), "\(found)")
    }

    @Test("every bad field is reported at once")
    func allReported() throws {
        let found = try issues(#"{"name": 1, "count": "x", "active": 0}"#)
        #expect(Set(found.map(\.field)) == ["name", "count", "active"])
    }

    @Test("malformed schemas are rejected naming the field")
    func malformedSchema() {
        for (json, field) in [(#"{"fields": [{"name": "a", "type": "text"}]}"#, "schema.fields[0].type"),
                              (#"{"fields": [{"name": "a", "type": "array"}]}"#, "schema.fields[0].items"),
                              (#"{"fields": [{"name": "a", "type": "object", "fields": []}]}"#, "schema.fields[0].fields"),
                              (#"{"fields": [{"name": "a.b", "type": "string"}]}"#, "schema.fields[0].name"),
                              (#"{"fields": [{"name": "a", "type": "string"}, {"name": "a", "type": "date"}]}"#, "schema.fields[1].name"),
                              (#"{"fields": [{"name": "a", "type": "string", "required": "yes"}]}"#, "schema.fields[0].required"),
                              (#"[]"#, "schema")] {
            do {
                _ = try ParameterSchema(json: try JSONValue(parsing: json))
                Issue.record("\(json) accepted")
            } catch let error as WorkflowError {
                #expect(error.issues.first?.field == field, "\(error)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test("the JSON form round-trips")
    func roundTrip() throws {
        #expect(try ParameterSchema(json: schema.json) == schema)
    }
}
