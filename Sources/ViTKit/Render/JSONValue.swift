/// A JSON value that keeps object keys in the order they were given, rendered on one line.
///
/// Output formats are public contracts with a documented field order; `JSONEncoder` sorts or scrambles keys.
package indirect enum JSONValue: Sendable, Equatable {
    case object([(String, JSONValue)])
    case array([JSONValue])
    case string(String)
    case double(Double)
    case float(Float)
    case int(Int)
    case bool(Bool)
    case null

    package static func == (a: JSONValue, b: JSONValue) -> Bool { a.rendered == b.rendered }

    /// Compact JSON on a single line. Numbers use the shortest text that reads back as the same value;
    /// non-finite numbers become `null`.
    package var rendered: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += ", " }
                Self.quote(key, into: &out)
                out += ": "
                value.write(to: &out)
            }
            out += "}"
        case .array(let values):
            out += "["
            for (i, value) in values.enumerated() {
                if i > 0 { out += ", " }
                value.write(to: &out)
            }
            out += "]"
        case .string(let s): Self.quote(s, into: &out)
        case .double(let d): out += d.isFinite ? Self.number(d.description) : "null"
        case .float(let f): out += f.isFinite ? Self.number(f.description) : "null"
        case .int(let i): out += String(i)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }

    /// Swift prints `1e-05` and `5.0`; both are valid JSON. Only `inf`/`nan` are not, and they are handled above.
    private static func number(_ text: String) -> String { text }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(c.value, radix: 16).count) + String(c.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
