package import RunlogJSON
/// Evaluates compiled conditions with MongoDB's semantics.
package struct Evaluator {
    let lists: any ListMembership

    package init(lists: any ListMembership) {
        self.lists = lists
    }

    func matches(_ node: Node, _ document: JSONValue) -> Bool {
        switch node {
        case .and(let nodes): nodes.allSatisfy { matches($0, document) }
        case .or(let nodes): nodes.contains { matches($0, document) }
        case .nor(let nodes): !nodes.contains { matches($0, document) }
        case .field(let path, let predicate): test(predicate, values(at: path[...], in: document))
        }
    }

    /// Every value a dotted path reaches. Through an array, a numeric component indexes it and
    /// any component also applies to each element that is an object (MongoDB's implicit
    /// traversal). Leaf arrays are returned whole; predicates look inside them as needed.
    package func values(at path: ArraySlice<String>, in value: JSONValue) -> [JSONValue] {
        guard let key = path.first else { return [value] }
        let rest = path.dropFirst()
        switch value {
        case .object(let members):
            guard let member = members[key] else { return [] }
            return values(at: rest, in: member)
        case .array(let elements):
            var found: [JSONValue] = []
            if let index = Int(key), index >= 0, index < elements.count {
                found += values(at: rest, in: elements[index])
            }
            for element in elements {
                if case .object = element { found += values(at: path, in: element) }
            }
            return found
        default:
            return []
        }
    }

    /// Whether the values at a path satisfy `predicate` (an empty list means the field is missing).
    func test(_ predicate: Predicate, _ values: [JSONValue]) -> Bool {
        switch predicate {
        case .all(let predicates):
            return predicates.allSatisfy { test($0, values) }
        case .eq(let target):
            if target == .null && values.isEmpty { return true }
            return anyValueOrElement(values) { $0 == target }
        case .ne(let target):
            return !test(.eq(target), values)
        case .compare(let comparison, let target):
            if target == .null {
                // Only $gte and $lte match null (and a missing field), as in MongoDB.
                return (comparison == .gte || comparison == .lte) && test(.eq(.null), values)
            }
            return anyValueOrElement(values) { compare($0, comparison, target) }
        case .in(let targets):
            if targets.contains(.null) && values.isEmpty { return true }
            return anyValueOrElement(values) { targets.contains($0) }
        case .nin(let targets):
            return !test(.in(targets), values)
        case .containsAll(let targets):
            // MongoDB: `$and` of equalities, each of which any value reached may satisfy.
            guard !targets.isEmpty else { return false }
            return targets.allSatisfy { test(.eq($0), values) }
        case .elemMatchDocument(let node):
            return values.contains { value in
                value.arrayValue?.contains { element in
                    if case .object = element { return matches(node, element) }
                    return false
                } ?? false
            }
        case .elemMatchValue(let inner):
            return values.contains { value in
                value.arrayValue?.contains { test(inner, [$0]) } ?? false
            }
        case .size(let n):
            return values.contains { $0.arrayValue?.count == n }
        case .exists(let exists):
            return values.isEmpty != exists
        case .type(let aliases):
            return values.contains { value in
                if aliases.contains(where: { $0.matches(value) }) { return true }
                if case .array(let elements) = value {
                    return elements.contains { element in aliases.contains { $0 != .array && $0.matches(element) } }
                }
                return false
            }
        case .regex(let regex):
            return anyValueOrElement(values) { value in
                if case .string(let s) = value { return regex.matches(s) }
                return false
            }
        case .not(let inner):
            return !test(inner, values)
        case .inList(let list):
            return anyValueOrElement(values) { lists.contains(list: list, value: $0) }
        }
    }

    /// True when `check` holds for a value itself or, for an array, for one of its elements.
    private func anyValueOrElement(_ values: [JSONValue], _ check: (JSONValue) -> Bool) -> Bool {
        for value in values {
            if check(value) { return true }
            if case .array(let elements) = value, elements.contains(where: check) { return true }
        }
        return false
    }

    /// Comparisons hold only between values of the same kind: numbers, strings or booleans.
    private func compare(_ value: JSONValue, _ comparison: Comparison, _ target: JSONValue) -> Bool {
        let order: Int
        switch (value, target) {
        case (.integer(let a), .integer(let b)):
            order = a < b ? -1 : a == b ? 0 : 1
        case (.integer(let a), .number(let b)):
            guard let o = JSONValue.order(a, b) else { return false }
            order = o
        case (.number(let a), .integer(let b)):
            guard let o = JSONValue.order(b, a) else { return false }
            order = -o
        case (.number(let a), .number(let b)):
            guard !a.isNaN && !b.isNaN else { return false }
            order = a < b ? -1 : a == b ? 0 : 1
        case (.string(let a), .string(let b)):
            // Binary (Unicode scalar) order, like MongoDB's default collation.
            order = a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) ? -1
                : a.unicodeScalars.elementsEqual(b.unicodeScalars) ? 0 : 1
        case (.bool(let a), .bool(let b)):
            order = a == b ? 0 : (!a && b) ? -1 : 1
        default:
            return false
        }
        switch comparison {
        case .gt: return order > 0
        case .gte: return order >= 0
        case .lt: return order < 0
        case .lte: return order <= 0
        }
    }
}
