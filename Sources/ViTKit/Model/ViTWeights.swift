import ViTKernels

/// A linear layer `y = x·W + b`, its weight packed once at load for the GEMM micro-kernel of this CPU (`vk_pack`), in
/// fp32, BF16 or INT8 (``Precision``; `vk_pack_bf16_transposed`, `vk_pack_q8_transposed`).
final class Linear: @unchecked Sendable {
    /// The packed weight of one precision.
    enum Packed {
        case fp32(OpaquePointer)
        case bf16(OpaquePointer)
        case int8(OpaquePointer)
    }

    let inputs: Int
    let outputs: Int
    let packed: Packed
    let bias: FloatBuffer

    /// From PyTorch's layout: `weight` is `[outputs][inputs]`; `scale` (LayerScale) multiplies each output.
    /// The fp32 weight is not referenced after packing (the caller's array is the only fp32 copy).
    init(
        pytorchWeight weight: [Float], bias: [Float]?, inputs: Int, outputs: Int, scale: [Float]? = nil,
        format: WeightFormat = .fp32
    ) throws {
        self.inputs = inputs
        self.outputs = outputs
        var scaled = weight
        if let scale { for o in 0..<outputs { for i in 0..<inputs { scaled[o * inputs + i] *= scale[o] } } }
        let b = bias ?? [Float](repeating: 0, count: outputs)
        self.bias = FloatBuffer(scale.map { scale in zip(b, scale).map { $0 * $1 } } ?? b)
        // The packers fail only when memory runs out (like the allocation of `weight` before them), or for an
        // unknown kernel name (tests only).
        packed = try scaled.withUnsafeBufferPointer { w -> Packed in
            let base = w.baseAddress
            switch format.precision {
            case .fp32:
                return .fp32(vk_pack_transposed(base, inputs, outputs, inputs)!)
            case .bf16:
                let p = format.kernel.map { vk_pack_bf16_transposed_with(base, inputs, outputs, inputs, $0) }
                    ?? vk_pack_bf16_transposed(base, inputs, outputs, inputs)
                guard let p else { throw ViTError.invalidArgument("BF16 kernel \(format.kernel ?? "") is not available here") }
                return .bf16(p)
            case .int8:
                let p = format.kernel.map { vk_pack_q8_transposed_with(base, inputs, outputs, inputs, $0) }
                    ?? vk_pack_q8_transposed(base, inputs, outputs, inputs)
                guard let p else { throw ViTError.invalidArgument("INT8 kernel \(format.kernel ?? "") is not available here") }
                return .int8(p)
            }
        }
    }

    /// A BF16 layer straight from a BF16 checkpoint's bits (`[outputs][inputs]`), with no fp32 copy of the weight.
    init(bf16Bits weight: [UInt16], bias: [Float]?, inputs: Int, outputs: Int, kernel: String? = nil) throws {
        self.inputs = inputs
        self.outputs = outputs
        self.bias = FloatBuffer(bias ?? [Float](repeating: 0, count: outputs))
        let p = weight.withUnsafeBufferPointer { w in
            kernel.map { vk_pack_bf16_transposed_bits_with(w.baseAddress, inputs, outputs, inputs, $0) }
                ?? vk_pack_bf16_transposed_bits(w.baseAddress, inputs, outputs, inputs)
        }
        guard let p else { throw ViTError.invalidArgument("BF16 kernel \(kernel ?? "") is not available here") }
        packed = .bf16(p)
    }

    deinit {
        switch packed {
        case .fp32(let p): vk_packed_free(p)
        case .bf16(let p): vk_packed_bf16_free(p)
        case .int8(let p): vk_packed_q8_free(p)
        }
    }

    /// The precision of the packed weight.
    var precision: Precision {
        switch packed {
        case .fp32: .fp32
        case .bf16: .bf16
        case .int8: .int8
        }
    }

    /// The micro-kernel the weight was packed for.
    var kernelName: String {
        switch packed {
        case .fp32: String(cString: vk_gemm_kernel_name())
        case .bf16(let p): String(cString: vk_packed_bf16_kernel(p))
        case .int8(let p): String(cString: vk_packed_q8_kernel(p))
        }
    }

    /// Bytes held by the packed weight (fp32: 4 per element).
    var packedBytes: Int {
        switch packed {
        case .fp32: 4 * inputs * outputs
        case .bf16(let p): vk_packed_bf16_bytes(p)
        case .int8(let p): vk_packed_q8_bytes(p)
        }
    }

    /// `y = x·W + b` (+ `y` when accumulating: the residual connection), then the activation, in one GEMM.
    func callAsFunction(
        _ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, accumulate: Bool = false,
        activation: ViTArchitecture.Activation? = nil, threads: Int
    ) {
        let act = activation?.kernelCode ?? Int32(VK_ACT_NONE)
        let acc: Int32 = accumulate ? 1 : 0
        switch packed {
        case .fp32(let p): vk_gemm_packed(rows, x, inputs, p, y, outputs, bias.base, acc, act, Int32(threads))
        case .bf16(let p): vk_gemm_bf16(rows, x, inputs, p, y, outputs, bias.base, acc, act, Int32(threads))
        case .int8(let p): vk_gemm_q8(rows, x, inputs, p, y, outputs, bias.base, acc, act, Int32(threads))
        }
    }
}

extension ViTArchitecture.Activation {
    /// The activation's `VK_ACT_*` code for the C kernels.
    var kernelCode: Int32 {
        switch self {
        case .gelu: Int32(VK_ACT_GELU_ERF)
        case .geluTanh: Int32(VK_ACT_GELU_TANH)
        case .quickGELU: Int32(VK_ACT_QUICK_GELU)
        case .silu: Int32(VK_ACT_SILU)
        }
    }
}

struct LayerNormParameters {
    let weight: FloatBuffer
    let bias: FloatBuffer
}

struct BlockWeights {
    let norm1: LayerNormParameters
    /// Fused query, key and value projections: outputs `[q (D) | k (D) | v (D)]`, head h at `h·headDim` in each.
    let qkv: Linear
    /// `[heads][tokens][tokens]`: the relative position bias added to this block's attention scores (BEiT).
    var relativeBias: FloatBuffer?
    /// Its learned table, `[(2H−1)(2W−1)+3][heads]`.
    var relativeBiasTable: [Float]?
    /// LayerNorm on the concatenated heads before `proj` (sub-LN).
    let attentionNorm: LayerNormParameters?
    let proj: Linear
    let norm2: LayerNormParameters
    /// `[hidden]`, or `[gate | value]` for a gated MLP.
    let fc1: Linear
    /// LayerNorm on the hidden units before `fc2` (sub-LN).
    let mlpNorm: LayerNormParameters?
    let fc2: Linear
}

/// timm's `AttentionPoolLatent` with one latent query, which is constant: its projection `q(latent)` is computed at load.
struct AttentionPoolWeights {
    /// `q(latent)`, `[D]`.
    let query: FloatBuffer
    /// Tokens → `[k (D) | v (D)]`.
    let kv: Linear
    let proj: Linear
    let norm: LayerNormParameters
    let fc1: Linear
    let fc2: Linear
    let activation: ViTArchitecture.Activation
}

/// All weights of a Vision Transformer in the one internal layout (timm's naming), ready for the forward pass.
///
/// LayerScale (`ls1`, `ls2`) is folded into the preceding projection at load (`γ ⊙ (xW + b) = x(Wγ) + bγ`).
struct ViTWeights {
    /// The patch embedding as a linear map on flattened patches `[C·p·p] → [D]` (C-major, then row, then column).
    let patchEmbedding: Linear
    let classToken: FloatBuffer?
    let distillationToken: FloatBuffer?
    /// `registerTokens × D`.
    let registerTokens: FloatBuffer?
    /// `positionEmbeddingRows × D` (empty without an absolute position embedding).
    var positionEmbedding: FloatBuffer
    let preNorm: LayerNormParameters?
    var blocks: [BlockWeights]
    let finalNorm: LayerNormParameters?
    let poolNorm: LayerNormParameters?
    let head: Linear
    let distillationHead: Linear?
    /// RoPE-Mixed's learned frequencies `[2][depth][heads][headDim/2]`.
    let rotaryFrequencies: [Float]?
    let attentionPool: AttentionPoolWeights?

    /// Takes every tensor the architecture needs from `store`, checking shapes, then checks nothing is left over.
    ///
    /// `format` is the precision of the blocks' linear layers and (BF16 only) the patch embedding; the heads, the
    /// attention pool and everything else stay fp32. BF16 weights of a BF16 checkpoint are packed from their bits.
    init(architecture a: ViTArchitecture, store: inout TensorStore, format: WeightFormat = .fp32) throws {
        let d = a.embedDim, m = a.mlpDim, p = a.patchSize
        func layerNorm(_ name: String, dim: Int? = nil) throws -> LayerNormParameters {
            LayerNormParameters(
                weight: FloatBuffer(try store.take("\(name).weight", shape: [dim ?? d])),
                bias: FloatBuffer(try store.take("\(name).bias", shape: [dim ?? d])))
        }
        func linear(
            _ name: String, inputs: Int, outputs: Int, bias: Bool = true, scale: [Float]? = nil, format: WeightFormat = .fp32,
            shape: [Int]? = nil
        ) throws -> Linear {
            if format.precision == .bf16, scale == nil,
                let bits = try store.takeBF16Bits("\(name).weight", shape: shape ?? [outputs, inputs])
            {
                return try Linear(
                    bf16Bits: bits, bias: bias ? try store.take("\(name).bias", shape: [outputs]) : nil,
                    inputs: inputs, outputs: outputs, kernel: format.kernel)
            }
            return try Linear(
                pytorchWeight: try store.take("\(name).weight", shape: shape ?? [outputs, inputs]),
                bias: bias ? try store.take("\(name).bias", shape: [outputs]) : nil,
                inputs: inputs, outputs: outputs, scale: scale, format: format)
        }
        patchEmbedding = try linear(
            "patch_embed.proj", inputs: a.channels * p * p, outputs: d, bias: a.patchEmbeddingBias,
            format: format.patchEmbedding, shape: [d, a.channels, p, p])
        classToken = a.classToken ? FloatBuffer(try store.take("cls_token", shape: [1, 1, d])) : nil
        distillationToken = a.distillationToken ? FloatBuffer(try store.take("dist_token", shape: [1, 1, d])) : nil
        registerTokens =
            a.registerTokens > 0 ? FloatBuffer(try store.take("reg_token", shape: [1, a.registerTokens, d])) : nil
        positionEmbedding =
            a.absolutePositionEmbedding
            ? FloatBuffer(try store.take("pos_embed", shape: [1, a.positionEmbeddingRows, d])) : FloatBuffer(count: 0)
        preNorm = a.preNorm ? try layerNorm("norm_pre") : nil
        // A shared table is read once and given to every block.
        let shared =
            a.relativePositionBias && a.sharedRelativePositionBias
            ? try RelativePositionBias(architecture: a) { shape in
                try store.take("rel_pos_bias.relative_position_bias_table", shape: shape)
            } : nil
        let sharedMatrix = shared.map { FloatBuffer($0.matrix) }
        blocks = try (0..<a.depth).map { i in
            let prefix = "blocks.\(i)"
            let ls1 = a.layerScale ? try store.take("\(prefix).ls1.gamma", shape: [d]) : nil
            let ls2 = a.layerScale ? try store.take("\(prefix).ls2.gamma", shape: [d]) : nil
            let bias = a.relativePositionBias && !a.sharedRelativePositionBias ? try RelativePositionBias(architecture: a, table: { shape in
                try store.take("\(prefix).attn.relative_position_bias_table", shape: shape)
            }) : nil
            return BlockWeights(
                norm1: try layerNorm("\(prefix).norm1"),
                qkv: try linear("\(prefix).attn.qkv", inputs: d, outputs: 3 * d, bias: a.qkvBias, format: format),
                relativeBias: bias.map { FloatBuffer($0.matrix) } ?? sharedMatrix, relativeBiasTable: bias?.table ?? shared?.table,
                attentionNorm: a.attentionNorm ? try layerNorm("\(prefix).attn.norm") : nil,
                proj: try linear("\(prefix).attn.proj", inputs: d, outputs: d, bias: a.projectionBias, scale: ls1, format: format),
                norm2: try layerNorm("\(prefix).norm2"),
                fc1: try linear("\(prefix).mlp.fc1", inputs: d, outputs: a.fc1Outputs, format: format),
                mlpNorm: a.mlpNorm ? try layerNorm("\(prefix).mlp.norm", dim: m) : nil,
                fc2: try linear("\(prefix).mlp.fc2", inputs: m, outputs: d, scale: ls2, format: format))
        }
        finalNorm = a.finalNorm ? try layerNorm("norm") : nil
        poolNorm = a.poolNorm ? try layerNorm("fc_norm") : nil
        head = try linear("head", inputs: a.headInputs, outputs: a.numClasses)
        distillationHead = a.distillationHead ? try linear("head_dist", inputs: d, outputs: a.numClasses) : nil
        if a.pooling == .attentionPool {
            let latent = try store.take("attn_pool.latent", shape: [1, 1, d])
            let qWeight = try store.take("attn_pool.q.weight", shape: [d, d])
            let qBias = try store.takeIfPresent("attn_pool.q.bias", shape: [d]) ?? [Float](repeating: 0, count: d)
            // q(latent) = W·latent + b, summed in the order of a dot product (float32, as the Linear would).
            let query = (0..<d).map { o in (0..<d).reduce(Float(0)) { $0 + qWeight[o * d + $1] * latent[$1] } + qBias[o] }
            let hidden = store.shape("attn_pool.mlp.fc1.weight")?.first ?? 0
            attentionPool = AttentionPoolWeights(
                query: FloatBuffer(query),
                kv: try linear("attn_pool.kv", inputs: d, outputs: 2 * d, bias: store.contains("attn_pool.kv.bias")),
                proj: try linear("attn_pool.proj", inputs: d, outputs: d),
                norm: try layerNorm("attn_pool.norm"),
                fc1: try linear("attn_pool.mlp.fc1", inputs: d, outputs: hidden),
                fc2: try linear("attn_pool.mlp.fc2", inputs: hidden, outputs: d),
                activation: a.family.hasSuffix("Eva") ? .gelu : a.activation)
        } else {
            attentionPool = nil
        }
        rotaryFrequencies =
            a.rotary?.learnedFrequencies == true
            ? try store.take("rope.freqs", shape: [2, a.depth, a.heads, a.headDim / 2]) : nil
        try store.checkAllUsed()
    }
}
