public import RunlogJSON
public import WorkflowModel
import Workflows

/// The query box: computed columns added to each row, then an optional condition (the condition
/// language of routes) that a row must satisfy to be imported. Both apply before the run is
/// created; the condition sees the row's values after conversion (see `QueryView`):
///
/// - each column by its name (computed columns too): a column the mapping maps to a parameter is
///   the parameter's value, converted by its type (`{"score": {"$gte": 50}}` on an integer
///   parameter compares numbers; a date is its `YYYY-MM-DD` text, which compares in date order),
///   missing when the cell is empty; any other column is its cell's text;
/// - `columns.<name>`: every column's cell as text, whatever it is mapped to.
///
/// A computed column is `{"name": "full_name", "template": "{first} {last}"}`: `{column}` is
/// replaced by that column's cell (`{{` and `}}` for literal braces).
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

    /// The row's cells with the computed ones appended.
    func cells(_ cells: [String], header: [String]) -> [String] {
        guard !computed.isEmpty else { return cells }
        var cells = cells
        for column in computed {
            cells.append(Self.render(column.template, cells: cells, header: header))
        }
        return cells
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

/// What the query box's condition sees of a row, compiled once per importer run (and when an
/// importer is saved, to refuse a condition that cannot work) from the header, computed columns
/// included, and the mapping. The document holds only the names the condition names, so a row
/// costs one small object; mapped values are the ones the mapping converted (no second
/// conversion).
///
/// - A column the mapping maps is its parameter's value, converted by the parameter's type
///   (missing when the cell is empty); any other column is its cell's text.
/// - `columns.<name>` is a column's cell as text, whatever it is mapped to (a CSV column named
///   `columns` is `columns.columns`).
///
/// A condition that names anything else, or compares a number or boolean column with text
/// (`{"score": "50"}`, `{"score": {"$regex": …}}`: these never hold), is refused with the path and
/// what to write instead.
struct QueryView: Sendable {
    /// A name the condition names at its top: a column, by its index in the row and, when the
    /// mapping maps it, its index among the mapper's columns.
    struct Root: Sendable {
        var name: String
        var index: Int
        var mapped: Int?
    }

    let condition: Condition
    let roots: [Root]
    /// The columns named under `columns.`, by name and index.
    let text: [(name: String, index: Int)]

    static let textRoot = "columns"

    /// Compiles the view of `condition` over `header` (with computed columns) and `mapper`'s
    /// columns; throws every rule the condition breaks, each at `query.condition.<path>`.
    init(_ condition: Condition, header: [String], mapper: RowMapper?) throws(QueryViewError) {
        self.condition = condition
        var index: [String: Int] = [:]
        for (i, name) in header.enumerated() where index[name] == nil { index[name] = i }
        var mapped: [String: Int] = [:]
        for (k, column) in (mapper?.columns ?? []).enumerated() { mapped[column.name] = k }
        let columnList = header.joined(separator: ", ")
        var issues: [FieldIssue] = []
        func refuse(_ path: String, _ rule: String) {
            issues.append(FieldIssue(field: "query.condition.\(path)", value: JSONValue.string(path).jsonText, rule: rule))
        }
        var roots: [Root] = []
        var text: [(name: String, index: Int)] = []
        for (path, predicate) in Self.fields(condition.source) {
            let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            let root = parts[0]
            if root == Self.textRoot {
                guard parts.count >= 2, let i = index[parts[1]] else {
                    refuse(path, parts.count < 2
                           ? "names columns, the text of every column: name one, columns.<column> (columns: \(columnList))"
                           : "names columns.\(parts[1]), which is not a column of the data (columns: \(columnList))")
                    continue
                }
                if !text.contains(where: { $0.name == parts[1] }) { text.append((parts[1], i)) }
                continue
            }
            guard let i = index[root] else {
                refuse(path, "names \(root), which is not a column of the data; a condition sees the columns "
                       + "(\(columnList)) by name, converted when mapped, and their text as columns.<column>")
                continue
            }
            let k = mapped[root]
            if !roots.contains(where: { $0.name == root }) { roots.append(Root(name: root, index: i, mapped: k)) }
            if let k, let mapper, parts.count == 1, Self.comparesText(predicate),
               case .scalar(let scalar) = mapper.columns[k].target.type,
               [.integer, .number, .boolean].contains(scalar) {
                let example = scalar == .boolean ? #"{"\#(root)": true}"# : #"{"\#(root)": {"$gte": 50}}"#
                refuse(path, "compares text with \(root), which is mapped to the \(scalar.rawValue) parameter "
                       + "\(mapper.columns[k].target.path) and is compared as one; write \(scalar == .integer ? "an" : "a") "
                       + "\(scalar.rawValue) (\(example)), "
                       + "or name columns.\(root) for the cell's text")
            }
        }
        guard issues.isEmpty else { throw QueryViewError(issues: issues) }
        self.roots = roots
        self.text = text
    }

    /// The document the condition sees for a row (`cells` with the computed ones; `converted`
    /// by the mapper the view was compiled with).
    func document(_ cells: [String], _ converted: RowMapper.Converted?) -> JSONValue {
        var document: [String: JSONValue] = [:]
        document.reserveCapacity(roots.count + 1)
        for root in roots {
            if let k = root.mapped, let converted {
                if let value = converted.values[k] { document[root.name] = value }
            } else if root.index < cells.count {
                document[root.name] = .string(cells[root.index])
            }
        }
        if !text.isEmpty {
            var columns: [String: JSONValue] = [:]
            for (name, i) in text where i < cells.count { columns[name] = .string(cells[i]) }
            document[Self.textRoot] = .object(columns)
        }
        return .object(document)
    }

    /// Whether a mapped column the condition names did not convert: the row is then an errored
    /// row (the cell, the rule), whatever the condition would say without it.
    func namesFailedCell(_ converted: RowMapper.Converted) -> Bool {
        roots.contains { root in root.mapped.map { converted.failed[$0] } ?? false }
    }

    /// Whether the row is kept.
    func matches(_ cells: [String], _ converted: RowMapper.Converted?) -> Bool {
        condition.matches(document(cells, converted))
    }

    /// Every field path of a query document and its predicate, through `$and`, `$or`, `$nor`.
    static func fields(_ query: JSONValue) -> [(path: String, predicate: JSONValue)] {
        guard case .object(let o) = query else { return [] }
        var out: [(path: String, predicate: JSONValue)] = []
        for key in o.keys.sorted() {
            let value = o[key]!
            if key.hasPrefix("$") {
                for item in value.arrayValue ?? [] { out += fields(item) }
            } else {
                out.append((key, value))
            }
        }
        return out
    }

    /// Whether a predicate compares its field with text: a string to equal, order against or
    /// find in a list, or a `$regex`.
    static func comparesText(_ predicate: JSONValue) -> Bool {
        guard case .object(let ops) = predicate, ops.keys.contains(where: { $0.hasPrefix("$") }) else {
            if case .string = predicate { return true }
            return false
        }
        for (op, arg) in ops {
            switch op {
            case "$eq", "$ne", "$gt", "$gte", "$lt", "$lte":
                if case .string = arg { return true }
            case "$in", "$nin", "$all":
                if arg.arrayValue?.contains(where: { if case .string = $0 { true } else { false } }) == true { return true }
            case "$regex":
                return true
            case "$not":
                if comparesText(arg) { return true }
            default:
                break
            }
        }
        return false
    }
}

/// Every rule a query box's condition breaks against the data and the mapping.
struct QueryViewError: Error, Sendable {
    var issues: [FieldIssue]
    var description: String { issues.map { "\($0.field) \($0.rule)" }.joined(separator: "; ") }
}
