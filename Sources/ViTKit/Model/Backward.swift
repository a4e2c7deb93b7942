import ViTKernels

/// What the forward pass keeps for a backward pass, created only when an explanation is requested.
///
/// Per pre-norm block `l` (rows are `images × tokens`): its input `x`, the fused `qkv`, the concatenated heads before
/// the output projection, the residual stream between attention and MLP, and `fc1`'s pre-activations; the attention
/// probabilities go to ``attention``. Entry `depth` of the block inputs is the last block's output (the final norm's
/// input). Sized once for `images` images; ViT-B/16 at 224 keeps about 95 MB per image.
final class ForwardTrace: @unchecked Sendable {
    let images: Int
    let rows: Int
    let layers: Int
    let embedDim: Int
    let mlpDim: Int
    let attention: AttentionRecorder
    /// The tokens before `norm_pre` (CLIP), or nil without one.
    let embedded: FloatBuffer?
    private let blockInputs, qkvs, headOutputs, middles, preActivations: FloatBuffer

    init(architecture a: ViTArchitecture, images: Int) {
        self.images = images
        rows = images * a.tokens
        layers = a.depth
        embedDim = a.embedDim
        mlpDim = a.mlpDim
        attention = AttentionRecorder(images: images, layers: a.depth, heads: a.heads, tokens: a.tokens)
        embedded = a.preNorm ? FloatBuffer(count: rows * a.embedDim) : nil
        blockInputs = FloatBuffer(count: (a.depth + 1) * rows * a.embedDim)
        qkvs = FloatBuffer(count: a.depth * rows * 3 * a.embedDim)
        headOutputs = FloatBuffer(count: a.depth * rows * a.embedDim)
        middles = FloatBuffer(count: a.depth * rows * a.embedDim)
        preActivations = FloatBuffer(count: a.depth * rows * a.mlpDim)
    }

    func blockInput(_ layer: Int) -> UnsafeMutablePointer<Float> { blockInputs.base + layer * rows * embedDim }
    func qkv(_ layer: Int) -> UnsafeMutablePointer<Float> { qkvs.base + layer * rows * 3 * embedDim }
    func heads(_ layer: Int) -> UnsafeMutablePointer<Float> { headOutputs.base + layer * rows * embedDim }
    func middle(_ layer: Int) -> UnsafeMutablePointer<Float> { middles.base + layer * rows * embedDim }
    func preActivation(_ layer: Int) -> UnsafeMutablePointer<Float> { preActivations.base + layer * rows * mlpDim }

    /// Copies the `rows` rows starting at `source` (as wide as `destination`'s slot) into `destination`.
    func keep(_ source: UnsafePointer<Float>, in destination: UnsafeMutablePointer<Float>?) {
        guard let destination else { return }
        let width: Int
        if qkvs.base <= destination && destination < qkvs.base + qkvs.count { width = 3 * embedDim } else { width = embedDim }
        destination.update(from: source, count: rows * width)
    }

    /// `destination` given as an optional buffer (for ``embedded``).
    func keep(_ source: UnsafePointer<Float>, in destination: FloatBuffer?) {
        guard let destination else { return }
        destination.base.update(from: source, count: rows * embedDim)
    }
}

extension Kernels {
    /// The activation in place over `rows × columns` floats (the kernel of the GEMM's epilogue).
    static func activate(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, _ activation: ViTArchitecture.Activation) {
        vkb_activate(x, rows, columns, activation.kernelCode)
    }
}

extension Linear {
    /// The fp32 packed weight, or nil for BF16 / INT8 layers.
    fileprivate var fp32Packed: OpaquePointer? {
        if case .fp32(let p) = packed { return p }
        return nil
    }
}

/// Gradients of one image's target logit (pre-softmax) with respect to every layer's attention probabilities and
/// every block's input tokens, and the input pixels.
struct ViTGradients: Sendable {
    let layers: Int
    let heads: Int
    let tokens: Int
    let embedDim: Int
    /// `[layers][heads][tokens][tokens]`: ∂logit/∂A.
    let attention: [Float]
    /// `[layers + 1][tokens][D]`: ∂logit/∂x at each block's input; entry `layers` is the last block's output.
    let tokenGradients: [Float]
    /// `[layers + 1][tokens][D]`: the activations those gradients refer to.
    let tokenActivations: [Float]
    /// `[channels][height][width]`: ∂logit/∂pixels (of the preprocessed input).
    let pixels: [Float]
}

/// The backward pass of the pre-norm Vision Transformer, for explanations: gradients of one logit with respect to the
/// activations (never the weights), over the buffers the forward kept (``ForwardTrace``), in one sweep from the head
/// down to the pixels.
///
/// Every linear layer `y = x·W` becomes `dx = dy·Wᵀ`, a GEMM over `Wᵀ` packed once (lazily, when the first
/// explanation is requested: it doubles the fp32 weights' memory). Per block, from the top:
///
///     dh  = dx·W₂ᵀ ⊙ act'(u)        dx += LN₂ᵀ(dh·W₁ᵀ)                    (MLP, u = fc1's pre-activation)
///     dO  = dx·W_projᵀ               per head: dA = dO·Vᵀ (recorded), dV = Aᵀ·dO,
///     dS  = A ⊙ (dA − rowsum(dA ⊙ A)),  dQ = s·dS·K,  dK = s·dSᵀ·Q          (s = head_dim^-½)
///     dx += LN₁ᵀ([dQ | dK | dV]·W_qkvᵀ)
///
/// LayerScale is folded into the projections at load, so it needs nothing here. Not a second model: one per
/// ``VisionTransformer``, used under its ``Explainer``'s lock.
final class Backward: @unchecked Sendable {
    struct BlockTransposes {
        let qkv, proj, fc1, fc2: OpaquePointer
    }

    let model: VisionTransformer
    private let blocks: [BlockTransposes]
    private let patch: OpaquePointer
    private let head: OpaquePointer
    private let distillationHead: OpaquePointer?
    // Workspace for one image, sized once.
    private let grad, normedGrad, headsGrad, qkvGrad, hiddenGrad, scoresGrad, attentionGrad, tokenGrads, pixelsGrad: FloatBuffer
    private let oneHot, pooledGrad, distilledGrad, scratch, patchesGrad: FloatBuffer

    /// Throws for the families the backward does not cover yet.
    static func check(_ a: ViTArchitecture) throws {
        var missing: [String] = []
        if a.block != .preNorm { missing.append("residual post-norm blocks") }
        if a.mlp != .standard { missing.append("gated (GLU) MLPs") }
        if a.rotary != nil { missing.append("rotary position embeddings") }
        if a.relativePositionBias { missing.append("relative position bias") }
        if a.attentionNorm || a.mlpNorm { missing.append("sub-LN") }
        if a.pooling == .attentionPool { missing.append("the attention-pool (MAP) head") }
        guard missing.isEmpty else {
            throw ViTError.invalidArgument(
                "explanations are not implemented for \(missing.joined(separator: ", ")) (\(a.family)) yet")
        }
    }

    init(model: VisionTransformer) throws {
        let a = model.architecture
        try Self.check(a)
        self.model = model
        func transpose(_ linear: Linear) throws -> OpaquePointer {
            guard let p = linear.fp32Packed else {
                throw ViTError.invalidArgument("explanations need fp32 weights (load the model with --precision fp32)")
            }
            return vkb_pack_transpose_of(p)!
        }
        blocks = try model.weights.blocks.map {
            BlockTransposes(qkv: try transpose($0.qkv), proj: try transpose($0.proj), fc1: try transpose($0.fc1), fc2: try transpose($0.fc2))
        }
        patch = try transpose(model.weights.patchEmbedding)
        head = try transpose(model.weights.head)
        distillationHead = try model.weights.distillationHead.map(transpose)
        let n = a.tokens, d = a.embedDim
        grad = FloatBuffer(count: n * d)
        normedGrad = FloatBuffer(count: n * d)
        headsGrad = FloatBuffer(count: n * d)
        qkvGrad = FloatBuffer(count: n * 3 * d)
        hiddenGrad = FloatBuffer(count: n * a.mlpDim)
        scoresGrad = FloatBuffer(count: a.heads * n * n)
        attentionGrad = FloatBuffer(count: a.depth * a.heads * n * n)
        tokenGrads = FloatBuffer(count: (a.depth + 1) * n * d)
        pixelsGrad = FloatBuffer(count: a.channels * a.imageHeight * a.imageWidth)
        oneHot = FloatBuffer(count: a.numClasses)
        pooledGrad = FloatBuffer(count: a.headInputs)
        distilledGrad = FloatBuffer(count: d)
        scratch = FloatBuffer(count: n * d + a.headInputs)
        patchesGrad = FloatBuffer(count: a.patchCount * a.channels * a.patchSize * a.patchSize)
    }

    deinit {
        for b in blocks { for p in [b.qkv, b.proj, b.fc1, b.fc2] { vk_packed_free(p) } }
        vk_packed_free(patch)
        vk_packed_free(head)
        if let distillationHead { vk_packed_free(distillationHead) }
    }

    /// The gradients of logit `target` of image `image` of the traced forward pass.
    func gradients(trace: ForwardTrace, image: Int, target: Int, threads t: Int) -> ViTGradients {
        let a = model.architecture, w = model.weights
        let n = a.tokens, d = a.embedDim, m = a.mlpDim, eps = a.layerNormEps
        let offset = image * n
        let g = grad.base
        func gemm(_ rows: Int, _ x: UnsafePointer<Float>, _ ldx: Int, _ p: OpaquePointer, _ y: UnsafeMutablePointer<Float>, _ ldy: Int) {
            vk_gemm_packed(rows, x, ldx, p, y, ldy, nil, 0, 0, Int32(t))
        }
        func layerNormBackward(
            _ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, rows: Int,
            _ p: LayerNormParameters, accumulate: Bool
        ) {
            Compute.parallelRows(rows, threads: t) { r in
                vkb_layer_norm_backward(
                    x + r.lowerBound * d, dy + r.lowerBound * d, dx + r.lowerBound * d, r.count, d, p.weight.base, eps,
                    accumulate ? 1 : 0)
            }
        }

        // Head: ∂logit/∂pooled is the target's row of W (mean of both heads when distilled).
        oneHot.base.update(repeating: 0, count: a.numClasses)
        oneHot[target] = 1
        gemm(1, oneHot.base, a.numClasses, head, pooledGrad.base, a.headInputs)
        if let distillationHead {
            gemm(1, oneHot.base, a.numClasses, distillationHead, distilledGrad.base, d)
            for i in 0..<d { pooledGrad[i] *= 0.5; distilledGrad[i] *= 0.5 }
        }
        // Pooling and the final norms, back to the last block's output tokens.
        let last = trace.blockInput(a.depth) + offset * d
        g.update(repeating: 0, count: n * d)
        let pooledInput = scratch.base + n * d  // the pooled vector before fc_norm, recomputed
        switch a.pooling {
        case .token:
            if let norm = w.poolNorm {
                pooledInput.update(from: last, count: d)
                if let f = w.finalNorm { Kernels.layerNorm(pooledInput, into: pooledInput, rows: 1, f, dim: d, eps: eps) }
                vkb_layer_norm_backward(pooledInput, pooledGrad.base, pooledGrad.base + 0, 1, d, norm.weight.base, eps, 0)
            }
            if let f = w.finalNorm {
                vkb_layer_norm_backward(last, pooledGrad.base, g, 1, d, f.weight.base, eps, 0)
                if a.distillationHead { vkb_layer_norm_backward(last + d, distilledGrad.base, g + d, 1, d, f.weight.base, eps, 0) }
            } else {
                g.update(from: pooledGrad.base, count: d)
                if a.distillationHead { (g + d).update(from: distilledGrad.base, count: d) }
            }
        case .average, .tokenAndAverage:
            let normed = scratch.base, width = a.headInputs, meanAt = a.pooling == .average ? 0 : d
            normed.update(from: last, count: n * d)
            if let f = w.finalNorm { Kernels.layerNorm(normed, into: normed, rows: n, f, dim: d, eps: eps) }
            if let norm = w.poolNorm {
                if a.pooling == .tokenAndAverage { pooledInput.update(from: normed, count: d) }
                for i in 0..<d {
                    var s: Float = 0
                    for row in a.prefixTokens..<n { s += normed[row * d + i] }
                    pooledInput[meanAt + i] = s / Float(a.patchCount)
                }
                // fc_norm covers the whole pooled vector (D, or 2·D for class token + mean)
                vkb_layer_norm_backward(pooledInput, pooledGrad.base, pooledGrad.base, 1, width, norm.weight.base, eps, 0)
            }
            if a.pooling == .tokenAndAverage { g.update(from: pooledGrad.base, count: d) }
            for row in a.prefixTokens..<n {
                for i in 0..<d { g[row * d + i] = pooledGrad[meanAt + i] / Float(a.patchCount) }
            }
            if let f = w.finalNorm {
                normed.update(from: g, count: n * d)
                layerNormBackward(last, normed, g, rows: n, f, accumulate: false)
            }
        case .attentionPool:
            preconditionFailure("checked at init")
        }
        let tokenGradients = tokenGrads.base
        (tokenGradients + a.depth * n * d).update(from: g, count: n * d)

        let s = model.attention.scale, hd = a.headDim
        for layer in stride(from: a.depth - 1, through: 0, by: -1) {
            let block = w.blocks[layer], tb = blocks[layer]
            // MLP: g is ∂/∂(block output); afterwards ∂/∂(middle).
            gemm(n, g, d, tb.fc2, hiddenGrad.base, m)
            let u = trace.preActivation(layer) + offset * m
            Compute.parallelRows(n, threads: t) { r in
                vkb_activation_backward(u + r.lowerBound * m, hiddenGrad.base + r.lowerBound * m, r.count * m, a.activation.kernelCode)
            }
            gemm(n, hiddenGrad.base, m, tb.fc1, normedGrad.base, d)
            layerNormBackward(trace.middle(layer) + offset * d, normedGrad.base, g, rows: n, block.norm2, accumulate: true)
            // Attention: ∂/∂(heads) → per head ∂A, ∂V, ∂Q, ∂K.
            gemm(n, g, d, tb.proj, headsGrad.base, d)
            let qkv = trace.qkv(layer) + offset * 3 * d, ld = 3 * d
            let dA = attentionGrad.base + layer * a.heads * n * n
            let dQKV = qkvGrad.base, dO = headsGrad.base, dS = scoresGrad.base
            Compute.parallelFor(a.heads, threads: t) { h in
                let probabilities = trace.attention.probabilities(image: image, layer: layer, head: h)
                let da = dA + h * n * n, ds = dS + h * n * n
                let q = qkv + h * hd, k = qkv + d + h * hd, v = qkv + 2 * d + h * hd
                BLAS.gemm(n, n, hd, a: dO + h * hd, lda: d, b: v, ldb: ld, transposeB: true, c: da, ldc: n)
                BLAS.gemm(n, hd, n, a: probabilities, lda: n, transposeA: true, b: dO + h * hd, ldb: d, c: dQKV + 2 * d + h * hd, ldc: ld)
                ds.update(from: da, count: n * n)
                vkb_softmax_backward(probabilities, ds, n, n, n)
                BLAS.gemm(n, hd, n, alpha: s, a: ds, lda: n, b: k, ldb: ld, c: dQKV + h * hd, ldc: ld)
                BLAS.gemm(n, hd, n, alpha: s, a: ds, lda: n, transposeA: true, b: q, ldb: ld, c: dQKV + d + h * hd, ldc: ld)
            }
            gemm(n, dQKV, ld, tb.qkv, normedGrad.base, d)
            layerNormBackward(trace.blockInput(layer) + offset * d, normedGrad.base, g, rows: n, block.norm1, accumulate: true)
            (tokenGradients + layer * n * d).update(from: g, count: n * d)
        }
        // Embedding: norm_pre, then the patch rows back through the patch projection to the pixels.
        if let norm = w.preNorm, let embedded = trace.embedded {
            normedGrad.base.update(from: g, count: n * d)
            layerNormBackward(embedded.base + offset * d, normedGrad.base, g, rows: n, norm, accumulate: false)
        }
        let p = a.patchSize, patchLength = a.channels * p * p
        gemm(a.patchCount, g + a.prefixTokens * d, d, patch, patchesGrad.base, patchLength)
        let plane = a.imageHeight * a.imageWidth
        for gy in 0..<a.gridHeight {
            for gx in 0..<a.gridWidth {
                var source = patchesGrad.base + (gy * a.gridWidth + gx) * patchLength
                for c in 0..<a.channels {
                    for py in 0..<p {
                        (pixelsGrad.base + c * plane + (gy * p + py) * a.imageWidth + gx * p).update(from: source, count: p)
                        source += p
                    }
                }
            }
        }
        return ViTGradients(
            layers: a.depth, heads: a.heads, tokens: n, embedDim: d, attention: attentionGrad.array,
            tokenGradients: tokenGrads.array,
            tokenActivations: trace.images == 1
                ? Array(UnsafeBufferPointer(start: trace.blockInput(0), count: (a.depth + 1) * n * d))
                : (0...a.depth).flatMap { l in Array(UnsafeBufferPointer(start: trace.blockInput(l) + offset * d, count: n * d)) },
            pixels: pixelsGrad.array)
    }
}
