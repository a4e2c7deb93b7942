import ArgumentParser
import Foundation
import ViTKit

extension ExplanationMethod: ExpressibleByArgument {}

/// Options for class-specific explanations (`--explain`, `--target`), shared by `classify` and `batch`.
struct ExplanationArguments: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Explain the prediction: \(ExplanationMethod.allCases.map(\.rawValue).joined(separator: ", ")) (repeat the option or separate by commas). JSON gets \"explanations\": [{\"method\", \"target\", \"label\", \"grid\" (input-gradient: \"size\"), \"values\"}], the raw values before any display normalisation; --overlay draws the first one.",
            valueName: "METHOD"))
    var explain: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The class to explain, by index or label (repeat for one map per class, sharing one forward pass; default: the top-1 prediction).",
            valueName: "LABEL|INDEX"))
    var target: [String] = []

    var methods: [ExplanationMethod] {
        explain.flatMap { $0.split(separator: ",") }.compactMap { ExplanationMethod(rawValue: $0.trimmingCharacters(in: .whitespaces)) }
    }

    var requested: Bool { !explain.isEmpty }

    func validate() throws {
        for name in explain.flatMap({ $0.split(separator: ",") }) {
            guard ExplanationMethod(rawValue: name.trimmingCharacters(in: .whitespaces)) != nil else {
                throw ValidationError(
                    "--explain: unknown method '\(name)' (\(ExplanationMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
        if !target.isEmpty && explain.isEmpty { throw ValidationError("--target needs --explain METHOD") }
    }

    /// The class indices of `--target` (nil: the top-1 prediction of each image).
    func targets(_ explainer: Explainer) throws -> [Int]? {
        target.isEmpty ? nil : try target.map(explainer.target)
    }

    /// The settings of the attention-only methods and grad-rollout's discard ratio, from the attention options.
    func settings(_ attention: AttentionArguments) -> ExplanationSettings {
        ExplanationSettings(
            map: attention.mapKind, heads: attention.headSelection, fusion: attention.fusion, discardRatio: attention.discardRatio)
    }

    /// The `"explanations"` member of an image's JSON object.
    static func json(_ explanations: [Explanation]) -> JSONValue {
        .array(
            explanations.map { e in
                .object([
                    ("method", .string(e.method.rawValue)), ("target", .int(e.target)), ("label", .string(e.label)),
                    (e.method == .inputGradient ? "size" : "grid", .array([.int(e.height), .int(e.width)])),
                    ("values", .array(e.values.map(JSONValue.float))),
                ])
            })
    }

    /// A text grid for one explanation (input-gradient: |values| summed per patch).
    static func text(_ e: Explanation, patchSize: Int) -> String {
        let title = "\(e.method.rawValue) for class \(e.target) (\(e.label))"
        guard e.method == .inputGradient else {
            return PredictionRendering.grid(e.values, height: e.height, width: e.width, title: title)
        }
        let gh = e.height / patchSize, gw = e.width / patchSize
        var cells = [Float](repeating: 0, count: gh * gw)
        for y in 0..<(gh * patchSize) {
            for x in 0..<(gw * patchSize) { cells[(y / patchSize) * gw + x / patchSize] += abs(e.values[y * e.width + x]) }
        }
        return PredictionRendering.grid(cells, height: gh, width: gw, title: title + ", |gradient × input| per patch")
    }

    /// Draws one explanation over `image` (negative values show as no heat; input-gradient shows |values|).
    static func overlay(
        _ image: RGBImage, _ e: Explanation, classifier: Classifier, attention: AttentionArguments
    ) -> RGBImage {
        let values = e.method == .inputGradient ? e.values.map(abs) : e.values
        return Overlay.render(
            image: image, map: values, gridHeight: e.height, gridWidth: e.width, preprocessing: classifier.info.preprocessing,
            colormap: attention.colormap, alpha: Float(attention.alpha))
    }
}

extension Bench {
    /// Median ms of one explanation at batch 1 (forward with the trace + one backward pass for the top-1 class, then
    /// the map), for `methods` (empty: the gradients alone).
    static func explanationMilliseconds(
        _ explainer: Explainer, input: [Float], methods: [ExplanationMethod], iterations: Int, warmup: Int
    ) throws -> Double {
        for _ in 0..<max(warmup, 1) { _ = try explainer.explain(preprocessed: input, methods: methods) }
        var times: [Double] = []
        for _ in 0..<iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try explainer.explain(preprocessed: input, methods: methods)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        times.sort()
        return times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
    }
}
