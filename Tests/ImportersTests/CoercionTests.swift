import RunlogJSON
import Testing
@testable import Importers
import WorkflowModel
import Workflows

@Suite("Importer mapping and coercion")
struct CoercionTests {
    static func value(_ cell: String, _ type: ParameterSchema.FieldType) -> JSONValue? {
        try? Coercion.value(cell, as: type).get()
    }

    @Test("every type of the formatting table, good and bad")
    func formattingTable() {
        #expect(Self.value("Sample string", .scalar(.string)) == "Sample string")
        #expect(Self.value("2001-01-01", .scalar(.date)) == "2001-01-01")
        for bad in ["2001-13-01", "01/01/2001", "2001-02-30", "2001-1-1"] { #expect(Self.value(bad, .scalar(.date)) == nil) }
        #expect(Self.value("true", .scalar(.boolean)) == true)
        #expect(Self.value("false", .scalar(.boolean)) == false)
        for bad in ["yes", "1", "TRUE "] { #expect(Self.value(bad, .scalar(.boolean)) == nil) }
        #expect(Self.value("123.12", .scalar(.number)) == .number(123.12))
        #expect(Self.value("-5", .scalar(.number)) == .number(-5))
        for bad in ["abc", "nan", "inf", "0x10", "1,5"] { #expect(Self.value(bad, .scalar(.number)) == nil) }
        #expect(Self.value("123", .scalar(.integer)) == 123)
        for bad in ["12.5", "1e3", "x"] { #expect(Self.value(bad, .scalar(.integer)) == nil) }
        #expect(Self.value(#"["apple", "banana", "cherry"]"#, .array(.string)) == ["apple", "banana", "cherry"])
        #expect(Self.value("[1, 2]", .array(.integer)) == [1, 2])
        #expect(Self.value(#"["a", 2]"#, .array(.string)) == nil)
        #expect(Self.value("apple", .array(.string)) == nil)
        #expect(Self.value(#"[{"name": "Alpha", "value": 1}]"#, .arrayOfObjects([])) == [["name": "Alpha", "value": 1]])
        #expect(Self.value(#"[1]"#, .arrayOfObjects([])) == nil)
        if case .failure(let broken) = Coercion.value("maybe", as: .scalar(.boolean)) {
            #expect(broken.rule == "must be true or false")
        } else {
            Issue.record("maybe is not a boolean")
        }
    }

    static let schema = try! ParameterSchema(json: JSONValue(parsing: #"""
        {"fields": [
          {"name": "email", "type": "string", "required": true},
          {"name": "age", "type": "integer"},
          {"name": "address", "type": "object", "required": true, "fields": [
             {"name": "zip", "type": "string", "required": true},
             {"name": "geo", "type": "object", "fields": [{"name": "lat", "type": "number"}]}]},
          {"name": "tags", "type": "array", "items": "string"}]}
        """#))

    @Test("objects are one column per terminal nested field; rows become parameters or name every bad field")
    func rows() throws {
        let mapping = ImporterMapping(columns: ["mail": "email", "age": "age", "zip": "address.zip", "lat": "address.geo.lat",
                                                "tags": "tags"])
        #expect(mapping.problems(for: .api(schema: Self.schema, stickyField: nil)).isEmpty)
        let header = ["mail", "age", "zip", "lat", "tags"]
        let mapper = try RowMapper(mapping: mapping, schema: Self.schema, header: header)
        let good = try mapper.parameters(["a@example.com", "41", "10115", "52.5", #"["x"]"#]).get()
        #expect(good == ["email": "a@example.com", "age": 41, "address": ["zip": "10115", "geo": ["lat": 52.5]], "tags": ["x"]])
        // Empty cells are missing values: fine when optional.
        #expect(try mapper.parameters(["a@example.com", "", "10115", "", ""]).get()
                == ["email": "a@example.com", "address": ["zip": "10115"]])
        guard case .failure(let broken) = mapper.parameters(["", "old", "", "", ""]) else {
            Issue.record("expected errors")
            return
        }
        #expect(Set(broken.issues.map(\.field)) == ["age", "mail", "zip"])
        #expect(broken.issues.first { $0.field == "age" }?.value == "old")
    }

    @Test("mapping rules by workflow type")
    func mappingRules() {
        let api = WorkflowDefinition.Trigger.api(schema: Self.schema, stickyField: nil)
        let missing = ImporterMapping(columns: ["mail": "email"]).problems(for: api)
        #expect(missing.map(\.rule) == ["required parameter address.zip is not mapped"])
        let unknown = ImporterMapping(columns: ["mail": "email", "zip": "address.zip", "x": "nope"]).problems(for: api)
        #expect(unknown.first?.field == "mapping.columns.x")
        let whole = ImporterMapping(columns: ["mail": "email", "zip": "address.zip", "a": "address"]).problems(for: api)
        #expect(whole.first?.field == "mapping.columns.a")
        let twice = ImporterMapping(columns: ["mail": "email", "m2": "email", "zip": "address.zip"]).problems(for: api)
        #expect(twice.first?.rule.contains("already mapped") == true)
        let event = WorkflowDefinition.Trigger.event(eventType: "inquiry.completed", criteria: nil)
        #expect(ImporterMapping(columns: [:]).problems(for: event).map(\.field) == ["mapping.token_column", "mapping.object_type"])
        #expect(ImporterMapping(tokenColumn: "t", objectType: "inquiry").problems(for: event).isEmpty)
        let action = WorkflowDefinition.Trigger.action(objectType: "case", inputs: .empty)
        #expect(ImporterMapping().problems(for: action).map(\.field) == ["mapping.token_column"])
    }

    @Test("the query box: computed columns, then the condition")
    func query() throws {
        let query = try ImporterQuery(json: [
            "condition": ["country": ["$in": ["DE", "FR"]], "full": ["$regex": "^A"]],
            "computed_columns": [["name": "full", "template": "{first} {last} {{x}}"]],
        ])
        let header = query.header(["first", "last", "country"])
        #expect(header == ["first", "last", "country", "full"])
        let view = try QueryView(try #require(query.condition), header: header, mapper: nil)
        let cells = query.cells(["Ada", "Lovelace", "DE"], header: header)
        #expect(view.matches(cells, nil))
        #expect(cells.last == "Ada Lovelace {x}")
        #expect(!view.matches(query.cells(["Ada", "Lovelace", "US"], header: header), nil))
        #expect(!view.matches(query.cells(["Bob", "B", "DE"], header: header), nil))
        #expect(throws: WorkflowError.self) { try ImporterQuery(json: ["condition": ["$bogus": 1]]) }
    }
}
