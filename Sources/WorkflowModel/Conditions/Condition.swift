public import RunlogJSON
import Foundation

/// A condition in Runlog's one condition language: a MongoDB query document evaluated against a
/// run's context (trigger data, parameters, the object, lists).
///
/// It is compiled once, when a draft is saved, so a malformed condition is rejected there with
/// the path and operator at fault; evaluating a compiled condition cannot fail. See
/// `docs/conditions.md` for the operators and their semantics.
public struct Condition: Sendable, Hashable, CustomStringConvertible {
    /// The query document as written.
    public let source: JSONValue
    let root: Node

    /// The empty query: matches every document (the "else" route).
    public static let always = try! Condition(.object([:]))

    /// Compiles a query document.
    public init(_ source: JSONValue) throws(ConditionError) {
        self.source = source
        guard case .object(let document) = source else {
            throw ConditionError(path: "", operator: nil, "a condition must be a JSON object, got \(source.typeName)")
        }
        root = try Compiler.document(document, at: "")
    }

    /// Parses and compiles a query document written as JSON text.
    public init(parsing text: String) throws(ConditionError) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: text)
        } catch {
            if let path = error.path {
                // Valid JSON with a number out of range: name where it is.
                throw ConditionError(path: path, operator: nil, error.message)
            }
            throw ConditionError(path: "", operator: nil, "the condition is not valid JSON: \(error.message)")
        }
        try self.init(value)
    }

    /// Whether `document` satisfies the condition; `lists` answers `$inList`.
    public func matches(_ document: JSONValue, lists: any ListMembership = NoLists()) -> Bool {
        Evaluator(lists: lists).matches(root, document)
    }

    public var description: String { source.jsonText }

    public static func == (lhs: Condition, rhs: Condition) -> Bool { lhs.source == rhs.source }
    public func hash(into hasher: inout Hasher) { hasher.combine(source) }
}

/// A malformed condition: where in it (a dotted path, "" for the top) and which operator.
public struct ConditionError: Error, Hashable, Sendable, CustomStringConvertible {
    public var path: String
    public var `operator`: String?
    public var message: String

    init(path: String, operator: String?, _ message: String) {
        self.path = path
        self.operator = `operator`
        self.message = message
    }

    public var description: String {
        var where_ = path.isEmpty ? "condition" : "condition at \"\(path)\""
        if let op = `operator` { where_ += ", operator \(op)" }
        return "\(where_): \(message)"
    }
}

/// Answers `$inList`: whether a value is a member of a named list.
public protocol ListMembership: Sendable {
    func contains(list: String, value: JSONValue) -> Bool
}

/// No lists: every `$inList` is false.
public struct NoLists: ListMembership {
    public init() {}
    public func contains(list: String, value: JSONValue) -> Bool { false }
}

/// Lists held in memory.
public struct StaticLists: ListMembership {
    public var lists: [String: Set<JSONValue>]
    public init(_ lists: [String: Set<JSONValue>]) { self.lists = lists }
    public func contains(list: String, value: JSONValue) -> Bool { lists[list]?.contains(value) ?? false }
}

// MARK: Compiled form

indirect enum Node: Sendable {
    case and([Node])
    case or([Node])
    case nor([Node])
    case field([String], Predicate)
}

enum Comparison: Sendable { case gt, gte, lt, lte }

/// A MongoDB type alias for `$type`: every alias MongoDB accepts. The BSON types a JSON value
/// never has (`date`, `objectId`, `decimal`, …) are accepted and match nothing.
enum TypeAlias: String, Sendable, CaseIterable {
    case double, string, object, array, binData, undefined, objectId, bool, date, null, regex, dbPointer
    case javascript, symbol, javascriptWithScope, int, timestamp, long, decimal, minKey, maxKey, number

    /// MongoDB's numeric codes (`number` has none).
    static let codes: [Int64: TypeAlias] = [
        1: .double, 2: .string, 3: .object, 4: .array, 5: .binData, 6: .undefined, 7: .objectId, 8: .bool,
        9: .date, 10: .null, 11: .regex, 12: .dbPointer, 13: .javascript, 14: .symbol, 15: .javascriptWithScope,
        16: .int, 17: .timestamp, 18: .long, 19: .decimal, -1: .minKey, 127: .maxKey,
    ]

    func matches(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.double, .number), (.string, .string), (.object, .object), (.array, .array),
             (.bool, .bool), (.null, .null), (.int, .integer), (.long, .integer),
             (.number, .integer), (.number, .number):
            true
        default:
            false
        }
    }
}

/// A compiled regular expression (ICU, through `NSRegularExpression`, which is safe to share).
final class CompiledRegex: @unchecked Sendable {
    let regex: NSRegularExpression

    init(pattern: String, options: String, path: String) throws(ConditionError) {
        var flags: NSRegularExpression.Options = []
        for option in options {
            switch option {
            case "i": flags.insert(.caseInsensitive)
            case "m": flags.insert(.anchorsMatchLines)
            case "s": flags.insert(.dotMatchesLineSeparators)
            case "x": flags.insert(.allowCommentsAndWhitespace)
            default:
                throw ConditionError(path: path, operator: "$options",
                                     "unknown option \"\(option)\"; allowed: i, m, s, x")
            }
        }
        do {
            regex = try NSRegularExpression(pattern: pattern, options: flags)
        } catch {
            throw ConditionError(path: path, operator: "$regex", "\"\(pattern)\" is not a valid regular expression")
        }
    }

    func matches(_ string: String) -> Bool {
        regex.firstMatch(in: string, range: NSRange(string.startIndex..., in: string)) != nil
    }
}

indirect enum Predicate: Sendable {
    case all([Predicate])
    case eq(JSONValue)
    case ne(JSONValue)
    case compare(Comparison, JSONValue)
    case `in`([JSONValue])
    case nin([JSONValue])
    case containsAll([JSONValue])
    case elemMatchDocument(Node)
    case elemMatchValue(Predicate)
    case size(Int)
    case exists(Bool)
    case type([TypeAlias])
    case regex(CompiledRegex)
    case not(Predicate)
    case inList(String)
}
