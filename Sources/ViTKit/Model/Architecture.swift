/// Everything the forward pass needs to know about a Vision Transformer's shape, in one dialect-free value.
///
/// The checkpoint dialects (timm, Hugging Face) translate their configuration files into this; the model code
/// knows nothing else.
public struct ViTArchitecture: Sendable, Equatable {
    public enum Pooling: String, Sendable {
        /// The class token's output (row 0); with a distillation token, the mean of both heads' logits.
        case token
        /// The mean over the patch tokens.
        case average
    }

    public enum Activation: String, Sendable {
        /// `0.5·x·(1 + erf(x/√2))`, PyTorch `nn.GELU()`, Hugging Face `"gelu"`.
        case gelu
        /// The tanh approximation, Hugging Face `"gelu_new"` / `"gelu_pytorch_tanh"`.
        case geluTanh
    }

    public var embedDim: Int
    public var depth: Int
    public var heads: Int
    public var mlpDim: Int
    public var patchSize: Int
    public var channels: Int
    /// Input height and width in pixels (multiples of `patchSize`).
    public var imageHeight: Int
    public var imageWidth: Int
    public var numClasses: Int

    public var classToken: Bool
    public var distillationToken: Bool
    /// A second classifier on the distillation token; the logits are the mean of both heads (DeiT distilled).
    public var distillationHead: Bool
    public var registerTokens: Int
    /// Whether the position embedding has rows for the prefix tokens (false: timm `no_embed_class`).
    public var positionEmbeddingIncludesPrefix: Bool
    public var pooling: Pooling
    /// A LayerNorm after position embedding, before the blocks (timm `pre_norm`).
    public var preNorm: Bool
    /// LayerNorm over all tokens after the last block (timm `norm`).
    public var finalNorm: Bool
    /// LayerNorm on the pooled vector (timm `fc_norm`, used with average pooling).
    public var poolNorm: Bool
    public var layerScale: Bool
    public var qkvBias: Bool
    public var layerNormEps: Float
    public var activation: Activation

    public var headDim: Int { embedDim / heads }
    public var gridHeight: Int { imageHeight / patchSize }
    public var gridWidth: Int { imageWidth / patchSize }
    public var patchCount: Int { gridHeight * gridWidth }
    /// Class, distillation and register tokens, in that order, before the patch tokens.
    public var prefixTokens: Int { (classToken ? 1 : 0) + (distillationToken ? 1 : 0) + registerTokens }
    public var tokens: Int { prefixTokens + patchCount }
    public var positionEmbeddingRows: Int { positionEmbeddingIncludesPrefix ? tokens : patchCount }

    /// Multiply-accumulates of one image's forward pass (patch embedding, blocks, head).
    public var macsPerImage: Int {
        let n = tokens, d = embedDim
        let perBlock = n * d * 3 * d + 2 * n * n * d + n * d * d + 2 * n * d * mlpDim
        return patchCount * channels * patchSize * patchSize * d + depth * perBlock + d * numClasses
    }

    /// Checks relationships between the fields.
    func validate(path: String) throws {
        func fail(_ reason: String) -> ViTError { .invalidConfiguration(path: path, reason: reason) }
        for (name, value) in [
            ("embed dim", embedDim), ("depth", depth), ("heads", heads), ("MLP dim", mlpDim),
            ("patch size", patchSize), ("channels", channels), ("image height", imageHeight),
            ("image width", imageWidth), ("classes", numClasses),
        ] {
            guard value > 0 && value <= 1 << 20 else { throw fail("\(name) is \(value)") }
        }
        guard channels == 3 else {
            throw fail("the model takes \(channels)-channel input; only RGB (3-channel) models are supported")
        }
        guard embedDim % heads == 0 else { throw fail("hidden size \(embedDim) is not divisible by \(heads) heads") }
        guard imageHeight % patchSize == 0 && imageWidth % patchSize == 0 else {
            throw fail("image size \(imageHeight)×\(imageWidth) is not a multiple of the patch size \(patchSize)")
        }
        guard registerTokens >= 0 else { throw fail("negative register tokens") }
        if pooling == .token && !classToken { throw fail("token pooling needs a class token") }
        if distillationHead && !distillationToken { throw fail("a distillation head needs a distillation token") }
    }
}
