import Foundation

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
    /// For ``logits(preprocessed:)``: grown to the largest batch seen.
    private var batchWorkspace: Workspace?
    private let lock = NSLock()
    /// Threads of this explainer's passes (the classifier's unless given).
    let threads: Int

    public convenience init(classifier: Classifier) throws {
        try self.init(classifier: classifier, threads: classifier.threads)
    }

    /// An explainer with its own workspaces and thread count, so that several can run at once on one classifier
    /// (each holds its own transposed weights for the backward pass).
    package init(classifier: Classifier, threads: Int) throws {
        self.classifier = classifier
        self.threads = max(1, threads)
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
                    recorder: trace.attention, trace: trace, threads: threads)
            }
        }
        let chosen = targets ?? [Classifier.rank(logits, labels: classifier.info.labels, topK: 1)[0].index]
        let gradients = chosen.map { backward.gradients(trace: trace, image: 0, target: $0, threads: threads) }
        let maps = AttentionMaps(probabilities: trace.attention.attention(image: 0), architecture: a)
        return (logits, maps, chosen, gradients)
    }

    /// Logits of preprocessed inputs as one batch, through this explainer's own workspace and threads (the same
    /// bits as ``Classifier``'s, which are independent of the batch and the thread count).
    package func logits(preprocessed inputs: [[Float]]) -> [[Float]] {
        lock.lock()
        defer { lock.unlock() }
        return classifier.model.logits(preprocessed: inputs, workspace: &batchWorkspace, recorder: nil, threads: threads)
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
        let (logits, maps, chosen, gradients) = gradients(preprocessed: input, targets: targets)
        var explanations: [Explanation] = []
        for (target, g) in zip(chosen, gradients) {
            for method in methods {
                explanations.append(try explanation(method, target: target, gradients: g, maps: maps, input: input, settings: settings))
            }
        }
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
        var heads: [[Float]]? = nil
        let layer: Int
        if case .layer(let l) = settings.map { layer = l } else { layer = a.depth - 1 }
        switch method {
        case .attention:
            values = try maps.map(settings.map == .rollout ? .last : settings.map, heads: settings.heads)
            heads = try (0..<a.heads).map { try maps.layerMap(layer, heads: .head($0)) }
        case .rollout:
            values = try maps.rollout(fusion: settings.fusion, discardRatio: settings.discardRatio)
        case .transformerAttribution:
            values = Explanations.transformerAttribution(
                attention: maps.probabilities, gradients: g.attention, tokens: n, prefix: p, hasClassToken: a.classToken)
            heads = try gradientWeightedHeads(layer)
        case .gradRollout:
            guard settings.discardRatio >= 0 && settings.discardRatio < 1 else {
                throw ViTError.invalidArgument("the discard ratio must be in [0, 1), not \(settings.discardRatio)")
            }
            values = Explanations.gradientRollout(
                attention: maps.probabilities, gradients: g.attention, tokens: n, prefix: p, hasClassToken: a.classToken,
                discardRatio: settings.discardRatio)
            heads = try gradientWeightedHeads(layer)
        case .gradcam:
            let l = a.depth - 1, range = (l * n * d)..<((l + 1) * n * d)
            values = Explanations.gradCAM(
                activations: g.tokenActivations[range], gradients: g.tokenGradients[range], tokens: n, prefix: p, dim: d)
        case .inputGradient:
            height = a.imageHeight
            width = a.imageWidth
            values = Explanations.inputGradient(gradients: g.pixels, input: input, channels: a.channels, plane: height * width)
        }
        func gradientWeightedHeads(_ layer: Int) throws -> [[Float]] {
            try maps.checkLayer(layer)
            return Explanations.gradientWeightedHeads(
                attention: maps.probabilities, gradients: g.attention, layer: layer, tokens: n, prefix: p, hasClassToken: a.classToken)
        }
        return Explanation(
            method: method, target: target, label: classifier.info.labels[target], height: height, width: width, values: values,
            heads: heads)
    }
}
