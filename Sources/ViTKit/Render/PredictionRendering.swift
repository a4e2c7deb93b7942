import Foundation

/// Text and JSON renderings of classification results (the CLI's output formats).
package enum PredictionRendering {
    /// `{"image": PATH, "model": NAME, "predictions": [{"rank", "index", "label", "probability", "logit"}, ...]}`
    /// — the fields of `vitclassify --format json`, in this order; `extra` members are appended.
    package static func json(image: String, model: String, predictions: [Prediction], extra: [(String, JSONValue)] = [])
        -> JSONValue
    {
        .object(
            [
                ("image", .string(image)),
                ("model", .string(model)),
                ("predictions", .array(predictions.map(json))),
            ] + extra)
    }

    package static func json(_ p: Prediction) -> JSONValue {
        .object([
            ("rank", .int(p.rank)), ("index", .int(p.index)), ("label", .string(p.label)),
            ("probability", .double(p.probability)), ("logit", .float(p.logit)),
        ])
    }

    /// A small aligned table: rank, label, probability.
    package static func table(image: String, model: String, predictions: [Prediction]) -> String {
        let labelWidth = max(5, predictions.map(\.label.count).max() ?? 0)
        func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, width - s.count))
            return left ? fill + s : s + fill
        }
        var lines = ["\(image)  (model: \(model))", "  rank  \(pad("label", labelWidth))  probability"]
        for p in predictions {
            lines.append(
                "  \(pad(String(p.rank), 4, left: true))  \(pad(p.label, labelWidth))  \(String(format: "%11.4f", p.probability))"
            )
        }
        return lines.joined(separator: "\n")
    }

    /// A map on the patch grid as rows of numbers (max-normalised, two decimals).
    package static func grid(_ map: [Float], height: Int, width: Int, title: String) -> String {
        let maximum = map.max() ?? 1
        var lines = ["  \(title), \(height)×\(width) patches, max = 1:"]
        for y in 0..<height {
            lines.append(
                "    "
                    + (0..<width).map { String(format: "%.2f", maximum > 0 ? map[y * width + $0] / maximum : 0) }.joined(
                        separator: " "))
        }
        return lines.joined(separator: "\n")
    }
}
