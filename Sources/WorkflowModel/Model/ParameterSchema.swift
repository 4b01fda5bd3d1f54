public import RunlogJSON
import Foundation

/// The typed inputs of an API trigger (its parameters) or of an object action (its input fields).
///
/// JSON form: `{"fields": [{"name": "email", "type": "string", "required": true}, …]}` with types
/// `string`, `date` (`YYYY-MM-DD`), `boolean`, `number` (float), `integer`,
/// `array` (with `"items"`: one of the five scalar types), `object` (with `"fields"`) and
/// `array_of_objects` (with `"fields"`).
public struct ParameterSchema: Sendable, Hashable {
    public var fields: [Field]

    public init(fields: [Field]) { self.fields = fields }

    public static let empty = ParameterSchema(fields: [])

    public struct Field: Sendable, Hashable {
        public var name: String
        public var type: FieldType
        public var required: Bool

        public init(_ name: String, _ type: FieldType, required: Bool = false) {
            self.name = name
            self.type = type
            self.required = required
        }
    }

    public enum Scalar: String, Sendable, Hashable, CaseIterable {
        case string, date, boolean, number, integer
    }

    public indirect enum FieldType: Sendable, Hashable {
        case scalar(Scalar)
        case array(Scalar)
        case object([Field])
        case arrayOfObjects([Field])

        public var name: String {
            switch self {
            case .scalar(let s): s.rawValue
            case .array(let s): "array of \(s.rawValue)"
            case .object: "object"
            case .arrayOfObjects: "array of objects"
            }
        }
    }

    /// Looks up a field by dotted path (`address.zip`).
    public func field(at path: String) -> Field? {
        var fields = self.fields
        var found: Field?
        for part in path.split(separator: ".") {
            guard let f = fields.first(where: { $0.name == part }) else { return nil }
            found = f
            switch f.type {
            case .object(let sub), .arrayOfObjects(let sub): fields = sub
            default: fields = []
            }
        }
        return found
    }

    // MARK: Validation of values

    /// Issues `validate` lists at most; beyond them one more issue counts the rest.
    public static let maxIssues = 100

    /// The rules `parameters` breaks, each naming the field, the value and the rule; empty when valid.
    /// At most `maxIssues` are listed (then one that counts the rest), and the work stays linear in
    /// the input however many rules it breaks.
    public func validate(_ parameters: JSONValue) -> [FieldIssue] {
        guard case .object(let object) = parameters else {
            return [FieldIssue(field: "parameters", value: parameters.jsonText, rule: "must be a JSON object")]
        }
        var issues = Issues()
        Self.validate(object, fields, prefix: "", into: &issues)
        if issues.unlisted > 0 {
            issues.listed.append(FieldIssue(field: "parameters", value: nil,
                                            rule: "breaks \(issues.unlisted) more rules than the \(Self.maxIssues) listed"))
        }
        return issues.listed
    }

    /// Issues found so far: the first `maxIssues`, and a count of the others (never built).
    private struct Issues {
        var listed: [FieldIssue] = []
        var unlisted = 0
        var room: Int { ParameterSchema.maxIssues - listed.count }

        mutating func add(_ issue: @autoclosure () -> FieldIssue) {
            if listed.count < ParameterSchema.maxIssues { listed.append(issue()) } else { unlisted += 1 }
        }
    }

    private static func validate(_ object: [String: JSONValue], _ fields: [Field], prefix: String,
                                 into issues: inout Issues) {
        let known = Set(fields.map(\.name))
        // The first unknown keys in sorted order, kept in a bounded sorted buffer: linear, not n log n.
        var unknown: [String] = []
        var unknownCount = 0
        let room = issues.room
        for key in object.keys where !known.contains(key) {
            unknownCount += 1
            guard room > 0, unknown.count < room || key < unknown[unknown.count - 1] else { continue }
            var low = 0, high = unknown.count
            while low < high {
                let mid = (low + high) / 2
                if unknown[mid] < key { low = mid + 1 } else { high = mid }
            }
            unknown.insert(key, at: low)
            if unknown.count > room { unknown.removeLast() }
        }
        for key in unknown {
            issues.add(FieldIssue(field: prefix + key, value: object[key]!.jsonText,
                                  rule: "is not a field of the parameter schema"))
        }
        issues.unlisted += unknownCount - unknown.count
        for field in fields {
            let path = prefix + field.name
            guard let value = object[field.name], value != .null else {
                if field.required {
                    issues.add(FieldIssue(field: path, value: nil, rule: "is required (\(field.type.name))"))
                }
                continue
            }
            check(value, field.type, path: path, into: &issues)
        }
    }

    private static func check(_ value: JSONValue, _ type: FieldType, path: String, into issues: inout Issues) {
        switch type {
        case .scalar(let scalar):
            if let rule = scalar.violation(value) {
                issues.add(FieldIssue(field: path, value: value.jsonText, rule: rule))
            }
        case .array(let scalar):
            guard case .array(let items) = value else {
                issues.add(FieldIssue(field: path, value: value.jsonText, rule: "must be an array of \(scalar.rawValue)"))
                return
            }
            for (i, item) in items.enumerated() {
                if let rule = scalar.violation(item) {
                    issues.add(FieldIssue(field: "\(path)[\(i)]", value: item.jsonText, rule: rule))
                }
            }
        case .object(let fields):
            guard case .object(let sub) = value else {
                issues.add(FieldIssue(field: path, value: value.jsonText, rule: "must be an object"))
                return
            }
            validate(sub, fields, prefix: path + ".", into: &issues)
        case .arrayOfObjects(let fields):
            guard case .array(let items) = value else {
                issues.add(FieldIssue(field: path, value: value.jsonText, rule: "must be an array of objects"))
                return
            }
            for (i, item) in items.enumerated() {
                guard case .object(let sub) = item else {
                    issues.add(FieldIssue(field: "\(path)[\(i)]", value: item.jsonText, rule: "must be an object"))
                    continue
                }
                validate(sub, fields, prefix: "\(path)[\(i)].", into: &issues)
            }
        }
    }
}

extension ParameterSchema.Scalar {
    /// The rule `value` breaks, or nil when it is a valid value of this type.
    public func violation(_ value: JSONValue) -> String? {
        switch (self, value) {
        case (.string, .string), (.boolean, .bool), (.number, .integer), (.number, .number), (.integer, .integer):
            return nil
        case (.integer, .number(let d)) where d == d.rounded() && abs(d) < 9.0e15:
            return nil
        case (.date, .string(let s)):
            return Self.isDate(s) ? nil : "must be a date written YYYY-MM-DD"
        case (.string, _): return "must be a string"
        case (.date, _): return "must be a date written YYYY-MM-DD"
        case (.boolean, _): return "must be true or false"
        case (.number, _): return "must be a number"
        case (.integer, _): return "must be an integer"
        }
    }

    /// `YYYY-MM-DD`, a real calendar date.
    public static func isDate(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard u.count == 10, u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-") else { return false }
        func number(_ r: Range<Int>) -> Int? {
            var n = 0
            for i in r {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(u[i]) else { return nil }
                n = n * 10 + Int(u[i] - UInt8(ascii: "0"))
            }
            return n
        }
        guard let y = number(0..<4), let m = number(5..<7), let d = number(8..<10), (1...12).contains(m), d >= 1
        else { return false }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        return d <= days
    }
}

// MARK: JSON form

extension ParameterSchema {
    /// Reads the JSON form, naming the field and rule of anything malformed.
    public init(json: JSONValue, path: String = "schema") throws(WorkflowError) {
        guard case .object(let o) = json, case .array(let items)? = o["fields"] else {
            throw .invalid(field: path, value: json, rule: "must be an object with a \"fields\" array")
        }
        self.fields = try Self.fields(items, path: path + ".fields")
    }

    private static func fields(_ items: [JSONValue], path: String) throws(WorkflowError) -> [Field] {
        var result: [Field] = []
        var names = Set<String>()
        for (i, item) in items.enumerated() {
            let at = "\(path)[\(i)]"
            guard case .object(let o) = item else { throw .invalid(field: at, value: item, rule: "must be an object") }
            guard case .string(let name)? = o["name"], !name.isEmpty, !name.contains("."), !name.hasPrefix("$") else {
                throw .invalid(field: at + ".name", value: o["name"],
                               rule: "must be a non-empty string without dots that does not start with $")
            }
            guard names.insert(name).inserted else {
                throw .invalid(field: at + ".name", value: .string(name), rule: "field names must be unique")
            }
            var required = false
            if let r = o["required"] {
                guard case .bool(let b) = r else { throw .invalid(field: at + ".required", value: r, rule: "must be true or false") }
                required = b
            }
            guard case .string(let typeName)? = o["type"] else {
                throw .invalid(field: at + ".type", value: o["type"], rule: "must be one of " + typeNames)
            }
            let type: FieldType
            if let scalar = Scalar(rawValue: typeName) {
                type = .scalar(scalar)
            } else {
                switch typeName {
                case "array":
                    guard case .string(let itemName)? = o["items"], let scalar = Scalar(rawValue: itemName) else {
                        throw .invalid(field: at + ".items", value: o["items"],
                                       rule: "an array needs \"items\": one of string, date, boolean, number, integer")
                    }
                    type = .array(scalar)
                case "object", "array_of_objects":
                    guard case .array(let sub)? = o["fields"], !sub.isEmpty else {
                        throw .invalid(field: at + ".fields", value: o["fields"], rule: "\(typeName) needs a non-empty \"fields\" array")
                    }
                    let nested = try fields(sub, path: at + ".fields")
                    type = typeName == "object" ? .object(nested) : .arrayOfObjects(nested)
                default:
                    throw .invalid(field: at + ".type", value: .string(typeName), rule: "must be one of " + typeNames)
                }
            }
            result.append(Field(name, type, required: required))
        }
        return result
    }

    private static let typeNames = "string, date, boolean, number, integer, array, object, array_of_objects"

    /// The JSON form.
    public var json: JSONValue {
        .object(["fields": .array(fields.map(Self.json))])
    }

    private static func json(_ field: Field) -> JSONValue {
        var o: [String: JSONValue] = ["name": .string(field.name), "required": .bool(field.required)]
        switch field.type {
        case .scalar(let s): o["type"] = .string(s.rawValue)
        case .array(let s): o["type"] = "array"; o["items"] = .string(s.rawValue)
        case .object(let f): o["type"] = "object"; o["fields"] = .array(f.map(json))
        case .arrayOfObjects(let f): o["type"] = "array_of_objects"; o["fields"] = .array(f.map(json))
        }
        return .object(o)
    }
}
