import RunlogJSON
/// Turns a query document into `Node`s, rejecting anything malformed with its path and operator.
enum Compiler {
    static let logical: Set<String> = ["$and", "$or", "$nor"]
    static let fieldOperators: Set<String> = [
        "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$all", "$elemMatch", "$size",
        "$exists", "$type", "$regex", "$options", "$not", "$inList",
    ]

    /// A query document: field conditions and `$and` / `$or` / `$nor`, all of which must hold.
    static func document(_ document: [String: JSONValue], at prefix: String) throws(ConditionError) -> Node {
        var nodes: [Node] = []
        for key in document.keys.sorted() {
            let value = document[key]!
            if key.hasPrefix("$") {
                guard logical.contains(key) else {
                    throw ConditionError(path: prefix, operator: key,
                                         "unknown operator at the top of a query; use $and, $or, $nor or a field path")
                }
                guard case .array(let items) = value, !items.isEmpty else {
                    throw ConditionError(path: prefix, operator: key, "needs a non-empty array of query objects")
                }
                var children: [Node] = []
                for (i, item) in items.enumerated() {
                    guard case .object(let sub) = item else {
                        throw ConditionError(path: join(prefix, "\(key)[\(i)]"), operator: key,
                                             "each element must be a query object, got \(item.typeName)")
                    }
                    children.append(try self.document(sub, at: prefix))
                }
                switch key {
                case "$and": nodes.append(.and(children))
                case "$or": nodes.append(.or(children))
                default: nodes.append(.nor(children))
                }
            } else {
                let path = try split(key, in: prefix)
                nodes.append(.field(path, try predicate(value, at: join(prefix, key))))
            }
        }
        return nodes.count == 1 ? nodes[0] : .and(nodes)
    }

    static func split(_ key: String, in prefix: String) throws(ConditionError) -> [String] {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !key.isEmpty, !parts.contains(where: \.isEmpty) else {
            throw ConditionError(path: join(prefix, key), operator: nil,
                                 "a field path needs non-empty names separated by single dots")
        }
        return parts
    }

    static func join(_ prefix: String, _ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }

    static func isOperatorObject(_ value: JSONValue) -> Bool {
        if case .object(let o) = value, let first = o.keys.first { return first.hasPrefix("$") }
        return false
    }

    /// What a field must satisfy: a literal (equality) or an object of operators.
    static func predicate(_ value: JSONValue, at path: String) throws(ConditionError) -> Predicate {
        guard case .object(let ops) = value, ops.keys.contains(where: { $0.hasPrefix("$") }) else {
            return .eq(value)
        }
        if let plain = ops.keys.first(where: { !$0.hasPrefix("$") }) {
            throw ConditionError(path: path, operator: nil,
                                 "mixes operators with the plain key \"\(plain)\"; use only operators, or only a value")
        }
        return try operators(ops, at: path)
    }

    static func operators(_ ops: [String: JSONValue], at path: String) throws(ConditionError) -> Predicate {
        var predicates: [Predicate] = []
        if ops["$options"] != nil && ops["$regex"] == nil {
            throw ConditionError(path: path, operator: "$options", "is only allowed beside $regex")
        }
        for op in ops.keys.sorted() {
            let arg = ops[op]!
            func fail(_ message: String) -> ConditionError { ConditionError(path: path, operator: op, message) }
            switch op {
            case "$eq":
                predicates.append(.eq(arg))
            case "$ne":
                predicates.append(.ne(arg))
            case "$gt", "$gte", "$lt", "$lte":
                switch arg {
                case .integer, .number, .string, .bool, .null: break
                default: throw fail("needs a number, string, boolean or null to compare with, got \(arg.typeName)")
                }
                let c: Comparison = op == "$gt" ? .gt : op == "$gte" ? .gte : op == "$lt" ? .lt : .lte
                predicates.append(.compare(c, arg))
            case "$in", "$nin":
                guard case .array(let values) = arg else { throw fail("needs an array of values, got \(arg.typeName)") }
                predicates.append(op == "$in" ? .in(values) : .nin(values))
            case "$all":
                guard case .array(let values) = arg else { throw fail("needs an array of values, got \(arg.typeName)") }
                predicates.append(try all(values, at: path, fail))
            case "$elemMatch":
                predicates.append(try elemMatch(arg, at: path, fail))
            case "$size":
                predicates.append(.size(try size(arg, fail)))
            case "$exists":
                predicates.append(.exists(try exists(arg, fail)))
            case "$type":
                let items: [JSONValue] = arg.arrayValue ?? [arg]
                var aliases: [TypeAlias] = []
                for item in items {
                    aliases.append(try typeAlias(item, fail))
                }
                guard !aliases.isEmpty else { throw fail("needs at least one type") }
                predicates.append(.type(aliases))
            case "$regex":
                guard case .string(let pattern) = arg else { throw fail("needs a pattern string, got \(arg.typeName)") }
                var options = ""
                if let o = ops["$options"] {
                    guard case .string(let s) = o else {
                        throw ConditionError(path: path, operator: "$options", "needs a string of flags, got \(o.typeName)")
                    }
                    options = s
                }
                predicates.append(.regex(try CompiledRegex(pattern: pattern, options: options, path: path)))
            case "$options":
                continue // read with $regex
            case "$not":
                guard case .object(let sub) = arg, !sub.isEmpty, sub.keys.allSatisfy({ $0.hasPrefix("$") }) else {
                    throw fail("needs an object of operators, e.g. {\"$not\": {\"$gt\": 5}}")
                }
                predicates.append(.not(try operators(sub, at: path)))
            case "$inList":
                guard case .string(let list) = arg, !list.isEmpty else { throw fail("needs a list id string") }
                predicates.append(.inList(list))
            default:
                throw fail(logical.contains(op)
                           ? "belongs at the top of a query object, not under a field"
                           : "unknown operator; supported: " + fieldOperators.sorted().joined(separator: " "))
            }
        }
        return predicates.count == 1 ? predicates[0] : .all(predicates)
    }

    /// `$all`: values the field must each equal (as `$and` of equalities, like MongoDB), or only
    /// `{"$elemMatch": …}` documents, each of which some element must match.
    static func all(_ values: [JSONValue], at path: String,
                    _ fail: (String) -> ConditionError) throws(ConditionError) -> Predicate {
        func elemMatchArgument(_ value: JSONValue) -> JSONValue? {
            guard case .object(let o) = value, o.count == 1 else { return nil }
            return o["$elemMatch"]
        }
        guard values.contains(where: { elemMatchArgument($0) != nil }) else {
            for (i, value) in values.enumerated() {
                if case .object(let o) = value, let key = o.keys.sorted().first(where: { $0.hasPrefix("$") }) {
                    throw fail("element [\(i)] is an operator object (\(key)); $all takes values to find, "
                               + "or only {\"$elemMatch\": …} documents")
                }
            }
            return .containsAll(values)
        }
        var matches: [Predicate] = []
        for (i, value) in values.enumerated() {
            guard let argument = elemMatchArgument(value) else {
                throw fail("element [\(i)] is \(value.jsonText), but the other elements are {\"$elemMatch\": …} "
                           + "documents; use only $elemMatch documents, or only values")
            }
            matches.append(try elemMatch(argument, at: path, fail))
        }
        return .all(matches)
    }

    /// `$elemMatch`: a query on the elements' fields, or operators on the elements' values.
    static func elemMatch(_ arg: JSONValue, at path: String,
                          _ fail: (String) -> ConditionError) throws(ConditionError) -> Predicate {
        guard case .object(let sub) = arg, !sub.isEmpty else {
            throw fail("needs a non-empty object: a query on the elements' fields, or operators")
        }
        let operatorsOnly = sub.keys.allSatisfy { $0.hasPrefix("$") && !logical.contains($0) }
        if operatorsOnly {
            return .elemMatchValue(try operators(sub, at: path))
        }
        return .elemMatchDocument(try document(sub, at: path))
    }

    /// `$size`: a non-negative whole number (`2` or `2.0`, as MongoDB accepts).
    static func size(_ arg: JSONValue, _ fail: (String) -> ConditionError) throws(ConditionError) -> Int {
        let count: Int?
        switch arg {
        case .integer(let n): count = Int(exactly: n)
        case .number(let d): count = Int(exactly: d)
        default: throw fail("needs a non-negative whole number, got \(arg.jsonText)")
        }
        guard let count else { throw fail("needs a non-negative whole number, got \(arg.jsonText)") }
        guard count >= 0 else { throw fail("may not be negative, got \(arg.jsonText)") }
        return count
    }

    /// `$exists`: `true` / `false`, or a number as MongoDB reads it (non-zero is true, `0` false).
    static func exists(_ arg: JSONValue, _ fail: (String) -> ConditionError) throws(ConditionError) -> Bool {
        switch arg {
        case .bool(let b): return b
        case .integer(let n): return n != 0
        case .number(let d) where !d.isNaN: return d != 0
        default: throw fail("needs true or false (or 1 / 0), got \(arg.jsonText)")
        }
    }

    /// One `$type` entry: a MongoDB alias or a numeric code (`2` or `2.0`).
    static func typeAlias(_ item: JSONValue, _ fail: (String) -> ConditionError) throws(ConditionError) -> TypeAlias {
        let code: Int64?
        switch item {
        case .string(let name):
            guard let alias = TypeAlias(rawValue: name) else {
                throw fail("unknown type \"\(name)\"; use one of "
                           + TypeAlias.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return alias
        case .integer(let n): code = n
        case .number(let d): code = Int64(exactly: d)
        default: throw fail("needs a type name or code, got \(item.typeName)")
        }
        guard let code, let alias = TypeAlias.codes[code] else {
            throw fail("unknown type code \(item.jsonText); codes are "
                       + TypeAlias.codes.keys.sorted().map(String.init).joined(separator: ", "))
        }
        return alias
    }
}
