@testable import RunlogJSON
import Testing
@testable import WorkflowModel
@testable import Workflows

@Suite("Condition language")
struct ConditionTests {
    /// The run context most tests evaluate against.
    let doc: JSONValue = try! JSONValue(parsing: """
        {
          "inquiry": {"status": "completed", "score": 82, "ratio": 0.75, "country": "DE",
                      "verified": true, "note": null, "name": "Ada Lovelace"},
          "tags": ["vip", "beta"],
          "scores": [70, 85, 91],
          "matrix": [[1, 2], [3]],
          "checks": [{"kind": "id", "passed": true, "score": 9}, {"kind": "selfie", "passed": false, "score": 4}],
          "account": {"emails": [{"address": "a@example.com", "primary": true}, {"address": "b@example.com"}]},
          "count": 3,
          "created": "2026-11-01"
        }
        """)

    func check(_ text: String, lists: any ListMembership = NoLists(),
               sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
        try Condition(parsing: text).matches(doc, lists: lists)
    }

    @Test("equality: implicit and $eq, dotted paths, numbers across int and float, objects")
    func equality() throws {
        #expect(try check(#"{"inquiry.status": "completed"}"#))
        #expect(try !check(#"{"inquiry.status": "pending"}"#))
        #expect(try check(#"{"inquiry.score": {"$eq": 82.0}}"#))
        #expect(try check(#"{"count": 3, "inquiry.country": "DE"}"#)) // all must hold
        #expect(try !check(#"{"count": 3, "inquiry.country": "FR"}"#))
        #expect(try check(#"{"checks.0": {"kind": "id", "score": 9, "passed": true}}"#)) // key order irrelevant
        #expect(try check(#"{"inquiry.note": null}"#))
        #expect(try check(#"{"inquiry.missing": null}"#)) // null matches a missing field
        #expect(try check(#"{}"#)) // the empty query: else
    }

    @Test("arrays: any element matches, whole-array equality, indexes, traversal into objects")
    func arrays() throws {
        #expect(try check(#"{"tags": "vip"}"#))
        #expect(try !check(#"{"tags": "gold"}"#))
        #expect(try check(#"{"tags": ["vip", "beta"]}"#))
        #expect(try !check(#"{"tags": ["beta", "vip"]}"#)) // order matters for whole arrays
        #expect(try check(#"{"tags.1": "beta"}"#))
        #expect(try check(#"{"checks.kind": "selfie"}"#))
        #expect(try check(#"{"account.emails.address": "b@example.com"}"#))
        #expect(try check(#"{"scores": {"$gt": 90}}"#))
        #expect(try !check(#"{"scores": {"$gt": 91}}"#))
        #expect(try check(#"{"matrix": [3]}"#)) // an element equal to the array
        #expect(try check(#"{"checks.score": {"$lt": 5}}"#))
    }

    @Test("comparisons only between like types")
    func comparisons() throws {
        #expect(try check(#"{"inquiry.score": {"$gt": 80, "$lte": 82}}"#))
        #expect(try !check(#"{"inquiry.score": {"$gt": 82}}"#))
        #expect(try check(#"{"inquiry.score": {"$gte": 82}}"#))
        #expect(try check(#"{"inquiry.ratio": {"$lt": 1}}"#))
        #expect(try !check(#"{"inquiry.score": {"$gt": "80"}}"#)) // number vs string: no match
        #expect(try !check(#"{"inquiry.status": {"$gt": 1}}"#))
        #expect(try check(#"{"created": {"$gte": "2026-10-01", "$lt": "2026-12-01"}}"#))
        #expect(try check(#"{"inquiry.verified": {"$gt": false}}"#))
        #expect(try check(#"{"inquiry.note": {"$gte": null}}"#))
        #expect(try !check(#"{"inquiry.note": {"$gt": null}}"#))
        #expect(try !check(#"{"inquiry.missing": {"$lt": 100}}"#))
    }

    @Test("$ne, $in, $nin, $all")
    func sets() throws {
        #expect(try check(#"{"inquiry.status": {"$ne": "pending"}}"#))
        #expect(try !check(#"{"tags": {"$ne": "vip"}}"#)) // no element may equal it
        #expect(try check(#"{"inquiry.missing": {"$ne": 1}}"#))
        #expect(try check(#"{"inquiry.country": {"$in": ["FR", "DE"]}}"#))
        #expect(try check(#"{"tags": {"$in": ["gold", "beta"]}}"#))
        #expect(try check(#"{"inquiry.missing": {"$in": [null]}}"#))
        #expect(try !check(#"{"inquiry.country": {"$in": []}}"#))
        #expect(try check(#"{"inquiry.country": {"$nin": ["FR", "US"]}}"#))
        #expect(try !check(#"{"tags": {"$nin": ["beta"]}}"#))
        #expect(try check(#"{"tags": {"$all": ["beta", "vip"]}}"#))
        #expect(try !check(#"{"tags": {"$all": ["beta", "gold"]}}"#))
        #expect(try !check(#"{"tags": {"$all": []}}"#))
    }

    @Test("$elemMatch on documents and on values, $size")
    func elemMatch() throws {
        #expect(try check(#"{"checks": {"$elemMatch": {"kind": "selfie", "passed": false}}}"#))
        // Without $elemMatch the two conditions may hold on different elements.
        #expect(try check(#"{"checks.kind": "selfie", "checks.passed": true}"#))
        #expect(try !check(#"{"checks": {"$elemMatch": {"kind": "selfie", "passed": true}}}"#))
        #expect(try check(#"{"scores": {"$elemMatch": {"$gt": 80, "$lt": 90}}}"#))
        #expect(try !check(#"{"scores": {"$elemMatch": {"$gt": 91}}}"#))
        #expect(try check(#"{"checks": {"$elemMatch": {"$or": [{"score": 4}, {"score": 100}]}}}"#))
        #expect(try !check(#"{"inquiry": {"$elemMatch": {"status": "completed"}}}"#)) // not an array
        #expect(try check(#"{"tags": {"$size": 2}}"#))
        #expect(try !check(#"{"tags": {"$size": 3}}"#))
        #expect(try !check(#"{"count": {"$size": 3}}"#))
    }

    @Test("$exists, $type")
    func existsAndType() throws {
        #expect(try check(#"{"inquiry.note": {"$exists": true}}"#))
        #expect(try check(#"{"inquiry.gone": {"$exists": false}}"#))
        #expect(try !check(#"{"inquiry.score": {"$exists": false}}"#))
        #expect(try check(#"{"inquiry.score": {"$type": "int"}}"#))
        #expect(try check(#"{"inquiry.score": {"$type": "number"}}"#))
        #expect(try check(#"{"inquiry.ratio": {"$type": "double"}}"#))
        #expect(try !check(#"{"inquiry.ratio": {"$type": "int"}}"#))
        #expect(try check(#"{"inquiry.note": {"$type": "null"}}"#))
        #expect(try check(#"{"tags": {"$type": "array"}}"#))
        #expect(try check(#"{"tags": {"$type": "string"}}"#)) // elements count
        #expect(try check(#"{"inquiry": {"$type": ["array", "object"]}}"#))
        #expect(try check(#"{"inquiry.verified": {"$type": 8}}"#))
    }

    @Test("$regex with options")
    func regex() throws {
        #expect(try check(#"{"inquiry.name": {"$regex": "^Ada"}}"#))
        #expect(try !check(#"{"inquiry.name": {"$regex": "^ada"}}"#))
        #expect(try check(#"{"inquiry.name": {"$regex": "^ada", "$options": "i"}}"#))
        #expect(try check(#"{"tags": {"$regex": "^b"}}"#))
        #expect(try !check(#"{"inquiry.score": {"$regex": "8"}}"#)) // only strings
    }

    @Test("$and, $or, $nor, $not")
    func logic() throws {
        #expect(try check(#"{"$and": [{"count": 3}, {"tags": "vip"}]}"#))
        #expect(try !check(#"{"$and": [{"count": 3}, {"tags": "gold"}]}"#))
        #expect(try check(#"{"$or": [{"count": 4}, {"tags": "vip"}]}"#))
        #expect(try !check(#"{"$or": [{"count": 4}, {"tags": "gold"}]}"#))
        #expect(try check(#"{"$nor": [{"count": 4}, {"tags": "gold"}]}"#))
        #expect(try !check(#"{"$nor": [{"count": 3}]}"#))
        #expect(try check(#"{"inquiry.score": {"$not": {"$gt": 90}}}"#))
        #expect(try !check(#"{"inquiry.score": {"$not": {"$gt": 50}}}"#))
        #expect(try check(#"{"inquiry.missing": {"$not": {"$gt": 50}}}"#)) // missing fields pass $not
        #expect(try check(#"{"inquiry.name": {"$not": {"$regex": "^Bob"}}}"#))
        #expect(try check(#"{"$or": [{"$and": [{"count": {"$gte": 3}}, {"inquiry.country": "DE"}]}, {"count": 0}]}"#))
    }

    @Test("$inList tests membership in a named list")
    func inList() throws {
        let lists = StaticLists(["blocked-countries": ["DE", "RU"], "vip-tags": ["vip"], "empty": []])
        #expect(try check(#"{"inquiry.country": {"$inList": "blocked-countries"}}"#, lists: lists))
        #expect(try check(#"{"tags": {"$inList": "vip-tags"}}"#, lists: lists))
        #expect(try !check(#"{"inquiry.country": {"$inList": "empty"}}"#, lists: lists))
        #expect(try !check(#"{"inquiry.country": {"$inList": "no-such-list"}}"#, lists: lists))
        #expect(try check(#"{"inquiry.country": {"$not": {"$inList": "empty"}}}"#, lists: lists))
    }

    @Test("malformed conditions are rejected naming the path and the operator",
          arguments: [
            (#"{"a": {"$gt": [1]}}"#, "a", "$gt"),
            (#"{"a": {"$foo": 1}}"#, "a", "$foo"),
            (#"{"$where": "1"}"#, "", "$where"),
            (#"{"$or": []}"#, "", "$or"),
            (#"{"$and": [1]}"#, "$and[0]", "$and"),
            (#"{"a.b": {"$in": 3}}"#, "a.b", "$in"),
            (#"{"a": {"$nin": "x"}}"#, "a", "$nin"),
            (#"{"a": {"$all": {}}}"#, "a", "$all"),
            (#"{"a": {"$size": -1}}"#, "a", "$size"),
            (#"{"a": {"$size": 1.5}}"#, "a", "$size"),
            (#"{"a": {"$exists": "yes"}}"#, "a", "$exists"),
            (#"{"a": {"$type": "decimal128"}}"#, "a", "$type"),
            (#"{"a": {"$regex": "("}}"#, "a", "$regex"),
            (#"{"a": {"$regex": "x", "$options": "q"}}"#, "a", "$options"),
            (#"{"a": {"$options": "i"}}"#, "a", "$options"),
            (#"{"a": {"$not": 5}}"#, "a", "$not"),
            (#"{"a": {"$elemMatch": 5}}"#, "a", "$elemMatch"),
            (#"{"a": {"$inList": ""}}"#, "a", "$inList"),
            (#"{"a": {"$and": [{"b": 1}]}}"#, "a", "$and"),
            (#"{"x": {"$elemMatch": {"y": {"$bad": 1}}}}"#, "x.y", "$bad"),
          ])
    func malformed(text: String, path: String, op: String) {
        do {
            _ = try Condition(parsing: text)
            Issue.record("\(text) compiled")
        } catch {
            #expect(error.path == path, "\(error)")
            #expect(error.operator == op, "\(error)")
            #expect(error.description.contains(op))
        }
    }

    @Test("malformed structure without an operator is rejected too")
    func malformedStructure() {
        for (text, path) in [(#"[1]"#, ""), (#"{"a..b": 1}"#, "a..b"), (#"{"a": {"$gt": 1, "b": 2}}"#, "a"), (#"{"a": "#, "")] {
            do {
                _ = try Condition(parsing: text)
                Issue.record("\(text) compiled")
            } catch {
                #expect(error.path == path, "\(error)")
            }
        }
    }
}
