import Foundation

/// Typed, path-aware reads from a configuration file's JSON object.
///
/// Every failed read names the file and the field ("config.json: invalid configuration: field
/// 'pretrained_cfg.crop_pct' must be a number"), so a broken config is one clear line.
struct JSONObject {
    let path: String
    let fieldPath: String
    let values: [String: Any]

    /// Parses a JSON file whose top level is an object.
    init(contentsOf path: String) throws {
        try self.init(data: FileIO.read(path, limit: Self.maxFileBytes), path: path)
    }

    /// Configuration files larger than this are refused before they are read.
    static let maxFileBytes = 64 * 1024 * 1024

    /// Parses JSON bytes whose top level is an object; `path` names the file in errors.
    init(data: Data, path: String) throws {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw ViTError.invalidConfiguration(path: path, reason: "not valid JSON")
        }
        guard let object = parsed as? [String: Any] else {
            throw ViTError.invalidConfiguration(path: path, reason: "top level is not a JSON object")
        }
        self.init(path: path, fieldPath: "", values: object)
    }

    init(path: String, fieldPath: String, values: [String: Any]) {
        self.path = path
        self.fieldPath = fieldPath
        self.values = values
    }

    func has(_ key: String) -> Bool { values[key] != nil && !(values[key] is NSNull) }

    private func name(_ key: String) -> String { fieldPath.isEmpty ? key : "\(fieldPath).\(key)" }

    func fail(_ key: String, _ expectation: String) -> ViTError {
        .invalidConfiguration(path: path, reason: "field '\(name(key).forMessage)' \(expectation)")
    }

    private func raw(_ key: String) -> Any? {
        guard let value = values[key], !(value is NSNull) else { return nil }
        return value
    }

    func string(_ key: String) throws -> String? {
        guard let value = raw(key) else { return nil }
        guard let string = value as? String else { throw fail(key, "must be a string") }
        return string
    }

    func double(_ key: String) throws -> Double? {
        guard let value = raw(key) else { return nil }
        guard let number = value as? NSNumber else { throw fail(key, "must be a number") }
        guard number.doubleValue.isFinite else { throw fail(key, "must be finite") }
        return number.doubleValue
    }

    func int(_ key: String) throws -> Int? {
        guard let value = try double(key) else { return nil }
        guard let int = Int(exactly: value), abs(int) < 1 << 31 else { throw fail(key, "must be an integer") }
        return int
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = raw(key) else { return nil }
        guard let bool = value as? Bool else { throw fail(key, "must be true or false") }
        return bool
    }

    func doubles(_ key: String) throws -> [Double]? {
        guard let value = raw(key) else { return nil }
        guard let array = value as? [Any] else { throw fail(key, "must be a list of numbers") }
        return try array.map {
            guard let n = $0 as? NSNumber, n.doubleValue.isFinite else { throw fail(key, "must be a list of numbers") }
            return n.doubleValue
        }
    }

    func ints(_ key: String) throws -> [Int]? {
        try doubles(key).map {
            try $0.map {
                guard let i = Int(exactly: $0), abs(i) < 1 << 31 else { throw fail(key, "must be a list of integers") }; return i
            }
        }
    }

    /// An integer, or a list of integers (e.g. `img_size: 224` or `[224, 224]`).
    func intOrInts(_ key: String) throws -> [Int]? {
        guard let value = raw(key) else { return nil }
        if value is [Any] { return try ints(key) }
        return try int(key).map { [$0] }
    }

    func strings(_ key: String) throws -> [String]? {
        guard let value = raw(key) else { return nil }
        guard let array = value as? [Any] else { throw fail(key, "must be a list of strings") }
        return try array.map {
            guard let s = $0 as? String else { throw fail(key, "must be a list of strings") }; return s
        }
    }

    func object(_ key: String) throws -> JSONObject? {
        guard let value = raw(key) else { return nil }
        guard let object = value as? [String: Any] else { throw fail(key, "must be an object") }
        return JSONObject(path: path, fieldPath: name(key), values: object)
    }
}

extension String {
    /// The string as it may appear inside a one-line error message: control characters (newlines, ...) escaped as
    /// in Swift literals, and at most `limit` characters (a name read from a hostile file can be anything).
    func forMessage(limit: Int) -> String {
        var out = ""
        for scalar in unicodeScalars {
            if out.unicodeScalars.count >= limit {
                out += "…"
                break
            }
            if scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}" {
                out += scalar.escaped(asASCII: true)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// ``forMessage(limit:)`` with a limit of 100 characters.
    var forMessage: String { forMessage(limit: 100) }
}
