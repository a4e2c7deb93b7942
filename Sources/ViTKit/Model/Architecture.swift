/// Everything the forward pass needs to know about a Vision Transformer's shape, in one dialect-free value.
///
/// The checkpoint dialects (timm, Hugging Face) translate their configuration files into this; the model code
/// knows nothing else.
package struct ViTArchitecture: Sendable, Equatable {
    package enum Pooling: String, Sendable {
        /// The class token's output (row 0); with a distillation token, the mean of both heads' logits.
        case token
        /// The mean over the patch tokens.
        case average
        /// The class token's output and the mean over the patch tokens side by side (`2·D` into the head, Hugging
        /// Face `Dinov2ForImageClassification`).
        case tokenAndAverage
        /// timm's attention-pool head (`global_pool='map'`, `AttentionPoolLatent`): a learned query attends over the
        /// tokens, then `y = o + MLP(LN(o))`.
        case attentionPool
    }

    package enum Activation: String, Sendable {
        /// `0.5·x·(1 + erf(x/√2))`, PyTorch `nn.GELU()`, Hugging Face `"gelu"`.
        case gelu
        /// The tanh approximation, Hugging Face `"gelu_new"` / `"gelu_pytorch_tanh"`.
        case geluTanh
        /// `x·σ(1.702·x)`, OpenAI CLIP's QuickGELU (timm `quick_gelu`).
        case quickGELU
        /// `x·σ(x)`, SiLU / Swish (the gate of SwiGLU).
        case silu
    }

    /// Where a block's LayerNorms sit (timm `Block` vs `ResPostBlock`, `vision_transformer.py`).
    package enum Block: String, Sendable {
        /// `x = x + attn(norm1(x)); x = x + mlp(norm2(x))`.
        case preNorm = "pre-norm"
        /// `x = x + norm1(attn(x)); x = x + norm2(mlp(x))` (timm `ResPostBlock`).
        case residualPostNorm = "residual post-norm"
    }

    /// The MLP of a block.
    package enum MLP: String, Sendable {
        /// `fc2(act(fc1(x)))` (timm `Mlp`).
        case standard = "MLP"
        /// `fc2(act(g)·v)` with `[g | v] = fc1(x)` (timm `GluMlp` / `SwiGLUPacked`, EVA's `SwiGLU` with `fc1_g`,
        /// `fc1_x` fused at load): `mlpDim` is the width of `g` and of `v`.
        case gated = "gated (GLU)"
    }

    /// 2-D rotary position embedding of timm's `RotaryEmbeddingCat` (`layers/pos_embed_sincos.py`), applied to the
    /// queries and keys of the patch tokens before the attention core.
    package struct Rotary: Sendable, Equatable {
        /// `ij`: the first half of each head's bands follows the row, the second the column; `xy`: the other way.
        package var rowFirst: Bool
        package var temperature: Float
        /// Added to each grid coordinate (`rope_grid_offset`).
        package var gridOffset: Float
        /// Coordinates are scaled to this grid (`ref_feat_shape`), when set.
        package var referenceGrid: [Int]?
        /// RoPE-Mixed (timm `RotaryEmbeddingMixed`): learned frequencies `rope.freqs` `[2][depth][heads][headDim/2]`,
        /// angle = column·f₀ + row·f₁, a different rotation per block and head (no temperature, offset or reference grid).
        package var learnedFrequencies = false
    }

    package var embedDim: Int
    package var depth: Int
    package var heads: Int
    package var mlpDim: Int
    package var patchSize: Int
    package var channels: Int
    /// Input height and width in pixels (multiples of `patchSize`).
    package var imageHeight: Int
    package var imageWidth: Int
    package var numClasses: Int

    package var classToken: Bool
    package var distillationToken: Bool
    /// A second classifier on the distillation token; the logits are the mean of both heads (DeiT distilled).
    package var distillationHead: Bool
    package var registerTokens: Int
    /// Whether the position embedding has rows for the prefix tokens (false: timm `no_embed_class`).
    package var positionEmbeddingIncludesPrefix: Bool
    package var pooling: Pooling
    /// A LayerNorm after position embedding, before the blocks (timm `pre_norm`).
    package var preNorm: Bool
    /// LayerNorm over all tokens after the last block (timm `norm`).
    package var finalNorm: Bool
    /// LayerNorm on the pooled vector (timm `fc_norm`, used with average pooling).
    package var poolNorm: Bool
    package var layerScale: Bool
    package var qkvBias: Bool
    package var layerNormEps: Float
    package var activation: Activation

    package var block: Block = .preNorm
    package var mlp: MLP = .standard
    /// A LayerNorm on the concatenated heads before the output projection (EVA `scale_attn_inner`, BEiT-3).
    package var attentionNorm = false
    /// A LayerNorm on the MLP's hidden units before `fc2` (EVA `scale_mlp`, BEiT-3).
    package var mlpNorm = false
    package var patchEmbeddingBias = true
    package var projectionBias = true
    /// A learned position embedding added to the tokens (false: positions come from RoPE or relative bias only).
    package var absolutePositionEmbedding = true
    package var rotary: Rotary? = nil
    /// A learned relative position bias per block, added to the attention scores (BEiT).
    package var relativePositionBias = false
    /// One relative position bias table shared by every block (timm `rel_pos_bias`, BEiT `use_shared_rel_pos_bias`).
    package var sharedRelativePositionBias = false
    /// The position embedding has rows for the class token and the patches but not the registers (Hugging Face
    /// DINOv2 with registers: they are inserted after the embedding is added).
    package var positionEmbeddingSkipsRegisters = false
    /// Whether the attention-pool head sees the prefix tokens too (EVA), or the patch tokens only (ViT).
    package var attentionPoolIncludesPrefix = false
    /// Heads of the attention-pool head (EVA's `attn_pool_num_heads`; else the blocks' `heads`).
    package var attentionPoolHeads = 0
    /// The checkpoint's family and class as read (e.g. "timm Eva (eva02_tiny_patch14_224)"), for `inspect`.
    package var family = "ViT"

    package var headDim: Int { embedDim / heads }
    package var gridHeight: Int { imageHeight / patchSize }
    package var gridWidth: Int { imageWidth / patchSize }
    package var patchCount: Int { gridHeight * gridWidth }
    /// Class, distillation and register tokens, in that order, before the patch tokens.
    package var prefixTokens: Int { (classToken ? 1 : 0) + (distillationToken ? 1 : 0) + registerTokens }
    package var tokens: Int { prefixTokens + patchCount }
    package var positionEmbeddingRows: Int {
        guard absolutePositionEmbedding else { return 0 }
        if positionEmbeddingSkipsRegisters { return tokens - registerTokens }
        return positionEmbeddingIncludesPrefix ? tokens : patchCount
    }
    /// Inputs of the classifier head: `D`, or `2·D` for the class token beside the patch mean.
    package var headInputs: Int { pooling == .tokenAndAverage ? 2 * embedDim : embedDim }
    /// Outputs of `fc1`: the hidden width, twice it for a gated MLP.
    package var fc1Outputs: Int { mlp == .gated ? 2 * mlpDim : mlpDim }

    /// Multiply-accumulates of one image's forward pass (patch embedding, blocks, head).
    package var macsPerImage: Int {
        let n = tokens, d = embedDim
        let perBlock = n * d * 3 * d + 2 * n * n * d + n * d * d + n * d * fc1Outputs + n * mlpDim * d
        return patchCount * channels * patchSize * patchSize * d + depth * perBlock + headInputs * numClasses
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
        if pooling == .attentionPool && (attentionPoolHeads <= 0 || embedDim % attentionPoolHeads != 0) {
            throw fail("the attention-pool head's \(attentionPoolHeads) heads do not divide the hidden size \(embedDim)")
        }
        if let rotary, headDim % 4 != 0 || !(rotary.temperature > 0) || (rotary.referenceGrid.map { $0.count != 2 || $0.contains { $0 <= 0 } } ?? false) {
            throw fail("rotary position embedding needs a head dim divisible by 4, a positive temperature and a 2-D reference grid")
        }
    }
}
