import RunlogJSON
import WorkflowModel
import Workflows

/// Turns a CSV cell into a parameter value by the type of the parameter it is mapped to,
/// following seed 000's formatting table: string as is; date `YYYY-MM-DD`; boolean `true` or
/// `false`; number a float (`123.12`); integer (`123`); arrays and arrays of objects as JSON
/// (`["apple", "banana"]`, `[{"name": "Alpha", "value": 1}]`); objects one column per terminal
/// nested field. An empty cell is a missing value.
enum Coercion {
    /// The value, or the rule the cell breaks.
    static func value(_ cell: String, as type: ParameterSchema.FieldType) -> Result<JSONValue, RuleBroken> {
        switch type {
        case .scalar(let scalar):
            return scalarValue(cell, scalar)
        case .array(let scalar):
            guard let parsed = try? JSONValue(parsing: cell), case .array(let items) = parsed else {
                return .failure(RuleBroken("must be a JSON array of \(scalar.rawValue), e.g. [\"apple\", \"banana\"]"))
            }
            for item in items {
                if let rule = scalar.violation(item) { return .failure(RuleBroken("every element \(rule)")) }
            }
            return .success(parsed)
        case .arrayOfObjects:
            guard let parsed = try? JSONValue(parsing: cell), case .array(let items) = parsed,
                  items.allSatisfy({ if case .object = $0 { true } else { false } }) else {
                return .failure(RuleBroken("must be a JSON array of objects, e.g. [{\"name\": \"Alpha\", \"value\": 1}]"))
            }
            return .success(parsed)
        case .object:
            return .failure(RuleBroken("an object is imported one column per nested field"))
        }
    }

    static func scalarValue(_ cell: String, _ scalar: ParameterSchema.Scalar) -> Result<JSONValue, RuleBroken> {
        switch scalar {
        case .string:
            return .success(.string(cell))
        case .date:
            return ParameterSchema.Scalar.isDate(cell) ? .success(.string(cell))
                : .failure(RuleBroken("must be a date written YYYY-MM-DD"))
        case .boolean:
            switch cell {
            case "true": return .success(.bool(true))
            case "false": return .success(.bool(false))
            default: return .failure(RuleBroken("must be true or false"))
            }
        case .number:
            guard let number = Double(cell), number.isFinite, isDecimal(cell) else {
                return .failure(RuleBroken("must be a number (a float such as 123.12)"))
            }
            return .success(.number(number))
        case .integer:
            guard let integer = Int64(cell) else { return .failure(RuleBroken("must be an integer such as 123")) }
            return .success(.integer(integer))
        }
    }

    /// Decimal notation only (`Double("nan")`, `"inf"` and hex floats are refused).
    static func isDecimal(_ text: String) -> Bool {
        text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x2B || $0 == 0x65 || $0 == 0x45 }
    }
}

struct RuleBroken: Error, Sendable, Hashable {
    var rule: String
    init(_ rule: String) { self.rule = rule }
}

/// A mapping compiled against the pinned version's parameters: builds each row's parameters.
struct RowMapper: Sendable {
    struct Column: Sendable {
        var index: Int
        var name: String
        var target: ColumnTarget
    }
    let columns: [Column]
    let schema: ParameterSchema

    /// `header` is the data source's header row (after computed columns); unknown columns are
    /// named in the error.
    init(mapping: ImporterMapping, schema: ParameterSchema, header: [String]) throws(RowMapperError) {
        var columns: [Column] = []
        for (name, path) in mapping.columns.sorted(by: { $0.key < $1.key }) {
            guard let index = header.firstIndex(of: name) else {
                throw RowMapperError("column \(name) of the mapping is not in the data (columns: "
                                     + header.joined(separator: ", ") + ")")
            }
            guard let target = ColumnTarget(path: path, schema: schema) else {
                throw RowMapperError("mapping.columns.\(name): \(path) is not a parameter of the pinned version")
            }
            columns.append(Column(index: index, name: name, target: target))
        }
        self.columns = columns
        self.schema = schema
    }

    /// A row's mapped cells converted by their parameters' types, once: what the query box's
    /// condition looks at and what the run's parameters are built from.
    struct Converted {
        /// The parameters built so far (nested objects for dotted paths).
        var root: [String: JSONValue] = [:]
        /// Per column of `columns`, in order (with `perColumn` only): its value, nil when the cell
        /// is empty or did not convert.
        var values: [JSONValue?] = []
        /// Per column of `columns` (with `perColumn` only): the cell did not convert.
        var failed: [Bool] = []
        var issues: [RowIssue] = []
    }

    /// Converts every mapped cell of `cells` by its parameter's type (an empty cell is missing).
    /// `perColumn`: also keep each column's value and whether it failed (`values`, `failed`),
    /// for the query box's condition; without it they stay empty.
    func convert(_ cells: [String], perColumn: Bool = false) -> Converted {
        var converted = Converted()
        if perColumn {
            converted.values.reserveCapacity(columns.count)
            converted.failed.reserveCapacity(columns.count)
        }
        for column in columns {
            let cell = column.index < cells.count ? cells[column.index] : ""
            var value: JSONValue?
            if !cell.isEmpty {
                switch Coercion.value(cell, as: column.target.type) {
                case .success(let good):
                    value = good
                    Self.set(&converted.root, column.target.parts[...], good)
                case .failure(let broken):
                    converted.issues.append(RowIssue(field: column.name, value: cell,
                                                     error: "\(column.target.path) \(broken.rule)"))
                    if perColumn {
                        converted.values.append(nil)
                        converted.failed.append(true)
                    }
                    continue
                }
            }
            if perColumn {
                converted.values.append(value)
                converted.failed.append(false)
            }
        }
        return converted
    }

    /// The run's parameters for `cells`, or every rule the row breaks (field = column name).
    func parameters(_ cells: [String]) -> Result<JSONValue, RowIssues> {
        parameters(convert(cells))
    }

    /// The run's parameters from a converted row, or every rule it breaks: cells that did not
    /// convert, required parameters left empty, the schema's other rules.
    func parameters(_ converted: Converted) -> Result<JSONValue, RowIssues> {
        let root = converted.root
        var issues = converted.issues
        // Required parameters left empty, named by the column that maps them.
        var reported = Set(issues.map(\.field))
        for column in columns where column.target.required && !reported.contains(column.name)
            && Self.value(at: column.target.parts[...], in: root) == nil {
            issues.append(RowIssue(field: column.name, value: "", error: "\(column.target.path) is required"))
            reported.insert(column.name)
        }
        let missingPaths = columns.filter { reported.contains($0.name) }.map(\.target.path)
        for issue in schema.validate(.object(root))
        where !missingPaths.contains(where: { $0 == issue.field || $0.hasPrefix(issue.field + ".") }) {
            let column = columns.first { $0.target.path == issue.field }?.name ?? issue.field
            issues.append(RowIssue(field: column, value: issue.value ?? "", error: "\(issue.field) \(issue.rule)"))
        }
        return issues.isEmpty ? .success(.object(root)) : .failure(RowIssues(issues: issues))
    }

    static func value(at path: ArraySlice<String>, in object: [String: JSONValue]) -> JSONValue? {
        guard let first = path.first, let value = object[first] else { return nil }
        if path.count == 1 { return value }
        return value.objectValue.flatMap { Self.value(at: path.dropFirst(), in: $0) }
    }

    static func set(_ object: inout [String: JSONValue], _ path: ArraySlice<String>, _ value: JSONValue) {
        guard let first = path.first else { return }
        if path.count == 1 {
            object[first] = value
            return
        }
        var inner = object[first]?.objectValue ?? [:]
        set(&inner, path.dropFirst(), value)
        object[first] = .object(inner)
    }
}

struct RowMapperError: Error, Sendable, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Every rule one row breaks.
struct RowIssues: Error, Sendable {
    var issues: [RowIssue]
}

/// Why one row did not become a run: the column, its value and the error.
public struct RowIssue: Sendable, Hashable {
    public var field: String
    public var value: String
    public var error: String

    public init(field: String, value: String, error: String) {
        self.field = field
        self.value = value
        self.error = error
    }
}
