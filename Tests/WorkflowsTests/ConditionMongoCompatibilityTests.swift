@testable import RunlogJSON
import Testing
@testable import WorkflowModel
@testable import Workflows

/// MongoDB forms the condition language accepts as MongoDB does: `$all` of `$elemMatch`
/// documents, every `$type` alias and code, `$exists: 1/0`, `$size: 2.0`.
@Suite("Condition language: MongoDB compatibility")
struct ConditionMongoCompatibilityTests {
    let doc: JSONValue = try! JSONValue(parsing: """
        {
          "checks": [{"kind": "id", "passed": true, "score": 9}, {"kind": "selfie", "passed": false, "score": 4}],
          "scores": [70, 85, 91],
          "tags": ["vip", "beta"],
          "name": "Ada",
          "count": 3,
          "ratio": 0.5
        }
        """)

    func check(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
        try Condition(parsing: text).matches(doc)
    }

    func expectRejected(_ text: String, path: String, op: String, saying words: String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try Condition(parsing: text)
            Issue.record("\(text) compiled", sourceLocation: sourceLocation)
        } catch {
            #expect(error.path == path, "\(error)", sourceLocation: sourceLocation)
            #expect(error.operator == op, "\(error)", sourceLocation: sourceLocation)
            #expect(error.description.contains(words), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("$all of $elemMatch documents: each must match some element")
    func allElemMatch() throws {
        #expect(try check(#"""
            {"checks": {"$all": [{"$elemMatch": {"kind": "id", "passed": true}},
                                 {"$elemMatch": {"score": {"$lt": 5}}}]}}
            """#))
        #expect(try !check(#"""
            {"checks": {"$all": [{"$elemMatch": {"kind": "id", "passed": true}},
                                 {"$elemMatch": {"kind": "selfie", "passed": true}}]}}
            """#))
        #expect(try check(#"{"scores": {"$all": [{"$elemMatch": {"$gt": 90}}, {"$elemMatch": {"$lt": 71}}]}}"#))
        #expect(try !check(#"{"scores": {"$all": [{"$elemMatch": {"$gt": 90}}, {"$elemMatch": {"$lt": 70}}]}}"#))
        #expect(try !check(#"{"name": {"$all": [{"$elemMatch": {"$eq": "Ada"}}]}}"#))
        // Malformed $elemMatch inside $all is named like any other.
        expectRejected(#"{"checks": {"$all": [{"$elemMatch": {"score": {"$bad": 1}}}]}}"#,
                       path: "checks.score", op: "$bad", saying: "unknown operator")
        expectRejected(#"{"checks": {"$all": [{"$elemMatch": {"kind": "id"}}, {"kind": "id"}]}}"#,
                       path: "checks", op: "$all", saying: "only $elemMatch documents, or only values")
        expectRejected(#"{"scores": {"$all": [{"$gt": 80}]}}"#, path: "scores", op: "$all",
                       saying: "operator object ($gt)")
        expectRejected(#"{"scores": {"$all": [{"$elemMatch": {"$gt": 80}, "$lt": 1}]}}"#, path: "scores",
                       op: "$all", saying: "operator object")
    }

    @Test("$all of values is the $and of equalities over every value a path reaches")
    func allValues() throws {
        #expect(try check(#"{"tags": {"$all": ["beta", "vip"]}}"#))
        // The two kinds come from different elements of `checks`.
        #expect(try check(#"{"checks.kind": {"$all": ["id", "selfie"]}}"#))
        #expect(try !check(#"{"checks.kind": {"$all": ["id", "passport"]}}"#))
        #expect(try check(#"{"missing": {"$all": [null]}}"#))
        #expect(try !check(#"{"tags": {"$all": []}}"#))
    }

    @Test("$type accepts every MongoDB alias and code; types JSON cannot hold match nothing")
    func typeAliases() throws {
        #expect(try check(#"{"name": {"$type": 2.0}}"#))
        #expect(try check(#"{"name": {"$type": ["date", "string"]}}"#))
        #expect(try check(#"{"count": {"$type": ["number"]}}"#))
        #expect(try check(#"{"checks.passed": {"$type": "bool"}}"#))
        for never in ["date", "decimal", "objectId", "timestamp", "regex", "binData", "minKey", "maxKey",
                      "undefined", "javascript", "symbol", "dbPointer", "javascriptWithScope"] {
            for field in ["name", "count", "ratio", "tags", "checks", "missing"] {
                #expect(try !check(#"{"\#(field)": {"$type": "\#(never)"}}"#), "\(never) \(field)")
            }
        }
        for code in [-1, 5, 6, 7, 9, 11, 12, 13, 14, 15, 17, 19, 127] {
            #expect(try !check(#"{"name": {"$type": \#(code)}}"#), "\(code)")
        }
        expectRejected(#"{"a": {"$type": 2.5}}"#, path: "a", op: "$type", saying: "unknown type code 2.5")
        expectRejected(#"{"a": {"$type": 20}}"#, path: "a", op: "$type", saying: "unknown type code 20")
        expectRejected(#"{"a": {"$type": 1e300}}"#, path: "a", op: "$type", saying: "unknown type code")
        expectRejected(#"{"a": {"$type": "Date"}}"#, path: "a", op: "$type", saying: "unknown type \"Date\"")
    }

    @Test("$exists takes 1 / 0 as MongoDB does; other non-booleans are refused")
    func existsNumbers() throws {
        #expect(try check(#"{"name": {"$exists": 1}}"#))
        #expect(try !check(#"{"name": {"$exists": 0}}"#))
        #expect(try check(#"{"missing": {"$exists": 0}}"#))
        #expect(try check(#"{"missing": {"$exists": 0.0}}"#))
        #expect(try check(#"{"name": {"$exists": -1}}"#))
        expectRejected(#"{"a": {"$exists": "false"}}"#, path: "a", op: "$exists", saying: "true or false")
        expectRejected(#"{"a": {"$exists": null}}"#, path: "a", op: "$exists", saying: "got null")
    }

    @Test("$size takes a whole number written as a float too")
    func sizeFloats() throws {
        #expect(try check(#"{"tags": {"$size": 2.0}}"#))
        #expect(try !check(#"{"tags": {"$size": 3.0}}"#))
        #expect(try !check(#"{"tags": {"$size": -0.0}}"#))
        #expect(try check(#"{"scores": {"$size": 3e0}}"#))
        expectRejected(#"{"a": {"$size": 2.5}}"#, path: "a", op: "$size", saying: "whole number")
        expectRejected(#"{"a": {"$size": 1e300}}"#, path: "a", op: "$size", saying: "whole number")
        expectRejected(#"{"a": {"$size": -2.0}}"#, path: "a", op: "$size", saying: "may not be negative")
        expectRejected(#"{"a": {"$size": "2"}}"#, path: "a", op: "$size", saying: "whole number")
    }
}
