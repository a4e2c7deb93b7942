import CBLAS
import Foundation

/// An explanation method: which patches (or pixels) made the model give a class its logit.
public enum ExplanationMethod: String, CaseIterable, Sendable {
    /// One layer's class-token attention (``AttentionMaps/map(_:heads:fusion:discardRatio:)``; the same for every class).
    case attention
    /// Attention rollout (the same for every class).
    case rollout
    /// Chefer, Gur & Wolf, ICCV 2021: `R = I`; per block `R ← R + mean_h((∇A ⊙ A)⁺)·R`; the class token's row.
    case transformerAttribution = "transformer-attribution"
    /// vit-explain's gradient attention rollout, with its defects fixed (see `Explanations.gradientRollout` in this file).
    case gradRollout = "grad-rollout"
    /// Grad-CAM over the patch tokens at the input of the last block's first LayerNorm.
    case gradcam
    /// Gradient × input per pixel of the model's input, summed over the channels.
    case inputGradient = "input-gradient"

    /// Whether the method needs the backward pass.
    public var needsGradients: Bool { self != .attention && self != .rollout }
}

/// One map for one class.
public struct Explanation: Sendable, Equatable {
    public var method: ExplanationMethod
    /// The class index the map explains.
    public var target: Int
    public var label: String
    /// Rows and columns of ``values``: the patch grid, or the model's input size for ``ExplanationMethod/inputGradient``.
    public var height: Int
    public var width: Int
    /// The method's raw values (before any display normalisation), row by row.
    public var values: [Float]
}

/// The settings of the attention-only methods (those of `--attention-map`, `--head`, `--head-fusion`,
/// `--discard-ratio`); ``ExplanationMethod/gradRollout`` uses the discard ratio too.
public struct ExplanationSettings: Sendable {
    public var map: AttentionMapKind
    public var heads: HeadSelection
    public var fusion: HeadSelection
    public var discardRatio: Double

    public init(map: AttentionMapKind = .last, heads: HeadSelection = .mean, fusion: HeadSelection = .mean, discardRatio: Double = 0) {
        self.map = map
        self.heads = heads
        self.fusion = fusion
        self.discardRatio = discardRatio
    }
}

/// The explanation maps, computed from the attention probabilities and the gradients of one target logit.
///
/// "The class token's row" (transformer attribution, gradient rollout) is row 0 — the class token, also for distilled
/// DeiT, whose distillation token (row 1) is skipped with the other prefix tokens; Chefer et al.'s code takes
/// `R[0, 1:]`, which for a distilled model would put the distillation token's column in the map. A model without a
/// class token (average pooling) has no such row: the map is the mean over the patch queries' rows, as for rollout.
enum Explanations {
    /// The row of an `n × n` matrix that stands for the class token, over the patch columns.
    static func classRow(_ r: [Double], tokens n: Int, prefix: Int, hasClassToken: Bool) -> [Double] {
        if hasClassToken { return Array(r[prefix..<n]) }
        var row = [Double](repeating: 0, count: n - prefix)
        for q in prefix..<n { for j in prefix..<n { row[j - prefix] += r[q * n + j] } }
        return row.map { $0 / Double(n - prefix) }
    }

    /// `a·result` for `n × n` row-major matrices (double precision; the corresponding C function is `cblas_dgemm()`).
    static func multiply(_ a: [Double], _ result: [Double], _ n: Int) -> [Double] {
        [Double](unsafeUninitializedCapacity: n * n) { out, count in
            a.withUnsafeBufferPointer { a in
                result.withUnsafeBufferPointer { r in
                    cblas_dgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(n), blasint(n), blasint(n), 1, a.baseAddress, blasint(n),
                        r.baseAddress, blasint(n), 0, out.baseAddress, blasint(n))
                }
            }
            count = n * n
        }
    }

    /// Chefer et al. 2021 (ICCV), Transformer-MM-Explainability's ViT notebook (`avg_heads`,
    /// `apply_self_attention_rules`, `generate_relevance`): `R = I`; per block, in forward order,
    /// `Ā = mean_h(clamp(∇A ⊙ A, min: 0))` and `R ← R + Ā·R`; the class token's row over the patches (raw).
    ///
    /// - Parameters:
    ///   - attention: `[layer][head][query · tokens + key]` probabilities; `gradients`: ∂logit/∂A, `[layer][head][n][n]` flat.
    static func transformerAttribution(
        attention: [[[Float]]], gradients: [Float], tokens n: Int, prefix: Int, hasClassToken: Bool
    ) -> [Float] {
        var r = [Double](repeating: 0, count: n * n)
        for i in 0..<n { r[i * n + i] = 1 }
        let heads = attention.first?.count ?? 0
        for (layer, probabilities) in attention.enumerated() {
            var cam = [Double](repeating: 0, count: n * n)
            for h in 0..<heads {
                let base = (layer * heads + h) * n * n, p = probabilities[h]
                for i in 0..<(n * n) { cam[i] += max(Double(gradients[base + i]) * Double(p[i]), 0) }
            }
            for i in 0..<(n * n) { cam[i] /= Double(heads) }
            let added = multiply(cam, r, n)
            for i in 0..<(n * n) { r[i] += added[i] }
        }
        return classRow(r, tokens: n, prefix: prefix, hasClassToken: hasClassToken).map(Float.init)
    }

    /// Gradient attention rollout as jacobgil/vit-explain's `vit_grad_rollout.py` describes it: per layer, in forward
    /// order, `Ā = mean_h(A ⊙ ∇A)` with negatives set to 0, the smallest `discardRatio` fraction of Ā's entries zeroed
    /// (never entry [0, 0]), `(Ā + I)/2` with each *row* re-normalised to sum 1, `result ← Ā·result`; the class token's
    /// row over the patches, divided by its maximum.
    ///
    /// vit-explain's own code differs (its defects, not copied): its hook lands on the softmax's input, so it weights
    /// by the gradient of the scores, not of the probabilities; it pairs layer i's attention with layer L−1−i's
    /// gradient (gradients arrive in backward order); `a / a.sum(dim=-1)` without `keepdim` divides columns, not rows;
    /// the class token's own entry may be discarded; `mask = result[0, 0, 1:]` assumes exactly one prefix token.
    static func gradientRollout(
        attention: [[[Float]]], gradients: [Float], tokens n: Int, prefix: Int, hasClassToken: Bool, discardRatio: Double
    ) -> [Float] {
        var result = [Double](repeating: 0, count: n * n)
        for i in 0..<n { result[i * n + i] = 1 }
        let heads = attention.first?.count ?? 0
        for (layer, probabilities) in attention.enumerated() {
            var a = [Double](repeating: 0, count: n * n)
            for h in 0..<heads {
                let base = (layer * heads + h) * n * n, p = probabilities[h]
                for i in 0..<(n * n) { a[i] += Double(gradients[base + i]) * Double(p[i]) }
            }
            for i in 0..<(n * n) { a[i] = max(a[i] / Double(heads), 0) }
            if discardRatio > 0 {
                let k = Int(Double(n * n) * discardRatio)
                let order = a.indices.sorted { a[$0] != a[$1] ? a[$0] < a[$1] : $0 < $1 }
                for index in order.prefix(k) where index != 0 { a[index] = 0 }
            }
            for row in 0..<n {
                a[row * n + row] += 1
                for c in 0..<n { a[row * n + c] /= 2 }
                let sum = a[(row * n)..<((row + 1) * n)].reduce(0, +)
                for c in 0..<n { a[row * n + c] /= sum }
            }
            result = multiply(a, result, n)
        }
        let map = classRow(result, tokens: n, prefix: prefix, hasClassToken: hasClassToken)
        let maximum = map.max() ?? 0
        return map.map { Float(maximum > 0 ? $0 / maximum : 0) }
    }

    /// Grad-CAM (pytorch-grad-cam's `GradCAM` with a ViT `reshape_transform`): over the patch tokens of `activations`
    /// (`[tokens][D]`), weights `α_c` = mean over the patches of `gradients[·][c]`, map = ReLU(Σ_c α_c·activations[·][c]).
    static func gradCAM(activations: ArraySlice<Float>, gradients: ArraySlice<Float>, tokens n: Int, prefix: Int, dim d: Int) -> [Float] {
        let x = Array(activations), g = Array(gradients), patches = n - prefix
        var alpha = [Double](repeating: 0, count: d)
        for t in prefix..<n { for c in 0..<d { alpha[c] += Double(g[t * d + c]) } }
        for c in 0..<d { alpha[c] /= Double(patches) }
        return (prefix..<n).map { t in
            var s = 0.0
            for c in 0..<d { s += alpha[c] * Double(x[t * d + c]) }
            return Float(max(s, 0))
        }
    }

    /// Gradient × input per pixel, summed over the channels (`[channels][height][width]` in, `[height][width]` out).
    static func inputGradient(gradients: [Float], input: [Float], channels: Int, plane: Int) -> [Float] {
        (0..<plane).map { i in
            var s = 0.0
            for c in 0..<channels { s += Double(gradients[c * plane + i]) * Double(input[c * plane + i]) }
            return Float(s)
        }
    }
}

/// An image's classification with its explanations.
public struct ExplainedClassification: Sendable {
    public var classification: Classification
    public var explanations: [Explanation]
}

/// Class-specific explanations of a ``Classifier``'s predictions: one forward pass records what the backward pass
/// (`Backward`, Model/Backward.swift) needs, then one backward sweep per target class gives every layer's ∂logit/∂A and every block's
/// ∂logit/∂x, from which the maps are computed.
///
/// Creating one packs the transposed linear weights (as much memory again as the fp32 weights) and a workspace for
/// one image; both are reused. Pre-norm ViT families only (class token, average pooling, distilled heads,
/// LayerScale, registers, norm_pre; GELU, tanh-GELU, QuickGELU, SiLU): others throw
/// ``ViTError/invalidArgument(_:)`` ("explanations are not implemented for … yet"). Thread-safe (calls are
/// serialised).
public final class Explainer: @unchecked Sendable {
    public let classifier: Classifier
    let backward: Backward
    private let workspace: Workspace
    private let trace: ForwardTrace
    private let lock = NSLock()

    public init(classifier: Classifier) throws {
        self.classifier = classifier
        let a = classifier.model.architecture
        backward = try Backward(model: classifier.model)
        workspace = Workspace(architecture: a, capacity: 1)
        trace = ForwardTrace(architecture: a, images: 1)
    }

    /// The class index for `text`: an index `0..<classes`, else a label (exact, then case-insensitive).
    public func target(_ text: String) throws -> Int {
        let labels = classifier.info.labels
        if let i = Int(text) {
            guard i >= 0 && i < labels.count else {
                throw ViTError.invalidArgument("target \(i) is not a class index (the model has classes 0-\(labels.count - 1))")
            }
            return i
        }
        if let i = labels.firstIndex(of: text) { return i }
        if let i = labels.firstIndex(where: { $0.caseInsensitiveCompare(text) == .orderedSame }) { return i }
        throw ViTError.invalidArgument("target '\(text)' is neither a class index nor one of the model's labels")
    }

    /// One forward pass with the trace, then one backward pass per target.
    ///
    /// - Returns: the logits, the attention maps, and per target its gradients.
    func gradients(preprocessed input: [Float], targets: [Int]?) -> (logits: [Float], maps: AttentionMaps, targets: [Int], gradients: [ViTGradients]) {
        let a = classifier.model.architecture
        precondition(input.count == a.channels * a.imageHeight * a.imageWidth, "input size mismatch")
        lock.lock()
        defer { lock.unlock() }
        var logits = [Float](repeating: 0, count: a.numClasses)
        input.withUnsafeBufferPointer { pixels in
            logits.withUnsafeMutableBufferPointer { out in
                classifier.model.forward(
                    pixels: pixels.baseAddress!, images: 1, logits: out.baseAddress!, workspace: workspace,
                    recorder: trace.attention, trace: trace, threads: classifier.threads)
            }
        }
        let chosen = targets ?? [Classifier.rank(logits, labels: classifier.info.labels, topK: 1)[0].index]
        let gradients = chosen.map { backward.gradients(trace: trace, image: 0, target: $0, threads: classifier.threads) }
        let maps = AttentionMaps(probabilities: trace.attention.attention(image: 0), architecture: a)
        return (logits, maps, chosen, gradients)
    }

    /// Classifies one image and explains it with every method for every target (default: the top-1 class).
    public func explain(
        _ image: RGBImage, methods: [ExplanationMethod], targets: [Int]? = nil, topK: Int = 5,
        settings: ExplanationSettings = ExplanationSettings()
    ) throws -> ExplainedClassification {
        try explain(preprocessed: classifier.preprocess(image), methods: methods, targets: targets, topK: topK, settings: settings)
    }

    /// The same for a preprocessed input `[channels][height][width]`.
    public func explain(
        preprocessed input: [Float], methods: [ExplanationMethod], targets: [Int]? = nil, topK: Int = 5,
        settings: ExplanationSettings = ExplanationSettings()
    ) throws -> ExplainedClassification {
        let a = classifier.model.architecture
        let (logits, maps, chosen, gradients) = gradients(preprocessed: input, targets: targets)
        var explanations: [Explanation] = []
        for (target, g) in zip(chosen, gradients) {
            for method in methods {
                explanations.append(try explanation(method, target: target, gradients: g, maps: maps, input: input, settings: settings))
            }
        }
        _ = a
        let classification = Classification(
            logits: logits, predictions: Classifier.rank(logits, labels: classifier.info.labels, topK: topK), attention: maps)
        return ExplainedClassification(classification: classification, explanations: explanations)
    }

    func explanation(
        _ method: ExplanationMethod, target: Int, gradients g: ViTGradients, maps: AttentionMaps, input: [Float],
        settings: ExplanationSettings
    ) throws -> Explanation {
        let a = classifier.model.architecture, n = a.tokens, p = a.prefixTokens, d = a.embedDim
        var height = a.gridHeight, width = a.gridWidth
        let values: [Float]
        switch method {
        case .attention:
            values = try maps.map(settings.map == .rollout ? .last : settings.map, heads: settings.heads)
        case .rollout:
            values = try maps.rollout(fusion: settings.fusion, discardRatio: settings.discardRatio)
        case .transformerAttribution:
            values = Explanations.transformerAttribution(
                attention: maps.probabilities, gradients: g.attention, tokens: n, prefix: p, hasClassToken: a.classToken)
        case .gradRollout:
            guard settings.discardRatio >= 0 && settings.discardRatio < 1 else {
                throw ViTError.invalidArgument("the discard ratio must be in [0, 1), not \(settings.discardRatio)")
            }
            values = Explanations.gradientRollout(
                attention: maps.probabilities, gradients: g.attention, tokens: n, prefix: p, hasClassToken: a.classToken,
                discardRatio: settings.discardRatio)
        case .gradcam:
            let l = a.depth - 1, range = (l * n * d)..<((l + 1) * n * d)
            values = Explanations.gradCAM(
                activations: g.tokenActivations[range], gradients: g.tokenGradients[range], tokens: n, prefix: p, dim: d)
        case .inputGradient:
            height = a.imageHeight
            width = a.imageWidth
            values = Explanations.inputGradient(gradients: g.pixels, input: input, channels: a.channels, plane: height * width)
        }
        return Explanation(
            method: method, target: target, label: classifier.info.labels[target], height: height, width: width, values: values)
    }
}
