public import Workflows

/// The query box: computed columns added to each row, then an optional condition (the condition
/// language of routes) that a row must satisfy to be imported. Both apply before mapping.
///
/// The condition sees the row as an object of column name → cell text (strings; compare with
/// `$eq`, `$in`, `$regex`, …). A computed column is `{"name": "full_name", "template": "{first}
/// {last}"}`: `{column}` is replaced by that column's cell (`{{` and `}}` for literal braces).
///
/// JSON form: `{"condition": {...}, "computed_columns": [{"name", "template"}]}`.
public struct ImporterQuery: Sendable, Hashable {
    public struct ComputedColumn: Sendable, Hashable {
        public var name: String
        public var template: String
    }
    public var condition: Condition?
    public var computed: [ComputedColumn]

    public init(condition: Condition? = nil, computed: [ComputedColumn] = []) {
        self.condition = condition
        self.computed = computed
    }

    public init(json: JSONValue?) throws(WorkflowError) {
        guard let json, json != .null else {
            self.init()
            return
        }
        guard case .object(let o) = json else { throw ImporterMapping.issue("query", json, "must be an object") }
        for key in o.keys where !["condition", "computed_columns"].contains(key) {
            throw ImporterMapping.issue("query.\(key)", o[key], "is not a known field (known: condition, computed_columns)")
        }
        var condition: Condition?
        if let source = o["condition"], source != .null {
            do {
                condition = try Condition(source)
            } catch {
                throw ImporterMapping.issue("query.condition" + (error.path.isEmpty ? "" : ".\(error.path)"), source,
                                            error.description)
            }
        }
        var computed: [ComputedColumn] = []
        if let list = o["computed_columns"], list != .null {
            guard case .array(let items) = list else { throw ImporterMapping.issue("query.computed_columns", list, "must be an array") }
            for (i, item) in items.enumerated() {
                guard let name = item["name"]?.stringValue, !name.isEmpty, let template = item["template"]?.stringValue else {
                    throw ImporterMapping.issue("query.computed_columns[\(i)]", item,
                                                "must be {\"name\": NAME, \"template\": TEXT}")
                }
                computed.append(ComputedColumn(name: name, template: template))
            }
        }
        self.init(condition: condition, computed: computed)
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [:]
        if let condition { o["condition"] = condition.source }
        if !computed.isEmpty {
            o["computed_columns"] = .array(computed.map { ["name": .string($0.name), "template": .string($0.template)] })
        }
        return .object(o)
    }

    public var isEmpty: Bool { condition == nil && computed.isEmpty }

    /// The header with the computed columns after the data's own.
    func header(_ columns: [String]) -> [String] { columns + computed.map(\.name) }

    /// The row's cells with the computed ones appended, and whether the condition keeps it.
    func apply(_ cells: [String], header: [String]) -> (cells: [String], keep: Bool) {
        guard !isEmpty else { return (cells, true) }
        var cells = cells
        for column in computed {
            cells.append(Self.render(column.template, cells: cells, header: header))
        }
        guard let condition else { return (cells, true) }
        var document: [String: JSONValue] = [:]
        for (i, name) in header.enumerated() where i < cells.count { document[name] = .string(cells[i]) }
        return (cells, condition.matches(.object(document)))
    }

    static func render(_ template: String, cells: [String], header: [String]) -> String {
        var out = ""
        var name = ""
        var inName = false
        var chars = template.makeIterator()
        var pending: Character?
        while let c = pending ?? chars.next() {
            pending = nil
            if inName {
                if c == "}" {
                    if let i = header.firstIndex(of: name), i < cells.count { out += cells[i] }
                    inName = false
                    name = ""
                } else {
                    name.append(c)
                }
            } else if c == "{" {
                let next = chars.next()
                if next == "{" { out.append("{") } else { inName = true; pending = next }
            } else if c == "}" {
                let next = chars.next()
                out.append("}")
                if next != "}" { pending = next }
            } else {
                out.append(c)
            }
        }
        return out
    }
}
