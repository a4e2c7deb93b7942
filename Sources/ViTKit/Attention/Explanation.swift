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
    /// Per head, a patch-grid map (``height`` × ``width``) of the layer the settings' map names (the last layer for
    /// rollout), for the methods built from per-head attention: ``ExplanationMethod/attention`` (each head's
    /// attention) and ``ExplanationMethod/transformerAttribution`` and ``ExplanationMethod/gradRollout`` (each head's
    /// gradient-weighted attention `(∇A_h ⊙ A_h)⁺`, the term both average over the heads). Nil for the others.
    public var heads: [[Float]]?
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
