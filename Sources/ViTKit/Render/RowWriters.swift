/// Rows of `vitclassify batch` output: CSV (RFC 4180) and JSON Lines.
package enum BatchRows {
    /// `image,label,probability,index[,label_2,probability_2,index_2 …],error` (CRLF line ends, RFC 4180).
    package static func csvHeader(topK: Int) -> String {
        var fields = ["image", "label", "probability", "index"]
        if topK > 1 { for k in 2...topK { fields += ["label_\(k)", "probability_\(k)", "index_\(k)"] } }
        fields.append("error")
        return fields.joined(separator: ",") + "\r\n"
    }

    package static func csvRow(image: String, predictions: [Prediction], error: String?, topK: Int) -> String {
        var fields = [image]
        for k in 0..<max(topK, 1) {
            if k < predictions.count {
                let p = predictions[k]
                fields += [p.label, p.probability.description, String(p.index)]
            } else {
                fields += ["", "", ""]
            }
        }
        fields.append(error ?? "")
        return fields.map(csvField).joined(separator: ",") + "\r\n"
    }

    /// Quotes a field when it holds a comma, a double quote, CR or LF (quotes doubled inside).
    package static func csvField(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// The fields of `vitclassify --format json`, then `"error"`: null or the error text.
    package static func jsonLine(
        image: String, model: String, predictions: [Prediction], error: String?, extra: [(String, JSONValue)] = []
    ) -> String {
        PredictionRendering.json(
            image: image, model: model, predictions: predictions, extra: extra + [("error", error.map(JSONValue.string) ?? .null)]
        ).rendered + "\n"
    }

    /// The image path of a complete output row (for `--resume`), or nil for the CSV header / unparsable lines.
    package static func imagePath(ofCSVRow line: String) -> String? {
        guard !line.isEmpty else { return nil }
        if line.hasPrefix("\"") {
            var result = ""
            var iterator = line.dropFirst().makeIterator()
            while let c = iterator.next() {
                if c == "\"" {
                    guard let next = iterator.next() else { return result }
                    if next == "\"" { result.append("\"") } else { return result }
                } else {
                    result.append(c)
                }
            }
            return nil
        }
        return String(line.prefix { $0 != "," })
    }
}
