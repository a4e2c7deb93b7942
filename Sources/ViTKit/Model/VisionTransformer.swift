/// The Vision Transformer forward pass (Dosovitskiy et al. 2021), over a batch of images at once.
///
/// Activations are `[images × tokens][D]` row-major, so every linear layer is one GEMM with M = images × tokens.
/// Pre-norm blocks, as in timm and Hugging Face:
///
///     x₀ = [cls, (dist), (reg…), patches·E] + pos
///     x  = x + MSA(LN₁(x))          MSA = the shared ``AttentionCore`` between the qkv and output projections
///     x  = x + MLP(LN₂(x))          MLP = GELU(h·W₁ + b₁)·W₂ + b₂
///     y  = head(LN(x)[cls])         (or the mean over patch tokens; distilled: mean of the two heads)
///
/// Nothing here knows about files, formats or images: pixels in (already preprocessed), logits out.
public final class VisionTransformer: @unchecked Sendable {
    public let architecture: ViTArchitecture
    let weights: ViTWeights
    let attention: AttentionCore

    init(architecture: ViTArchitecture, weights: ViTWeights) {
        self.architecture = architecture
        self.weights = weights
        attention = AttentionCore(heads: architecture.heads, headDim: architecture.headDim, tokens: architecture.tokens)
    }

    /// Runs `images` preprocessed images through the network.
    ///
    /// - Parameters:
    ///   - pixels: `[images][channels][height][width]` at the architecture's input size.
    ///   - logits: receives `[images][numClasses]`.
    ///   - workspace: activations, allocated once (``Workspace``) and reused: nothing is allocated here.
    ///   - recorder: receives every layer's attention probabilities when non-nil.
    func forward(
        pixels: UnsafePointer<Float>, images: Int, logits: UnsafeMutablePointer<Float>, workspace w: Workspace,
        recorder: AttentionRecorder? = nil
    ) {
        precondition(images <= w.capacity, "workspace too small")
        let a = architecture, rows = images * a.tokens, eps = a.layerNormEps
        let x = w.tokens.base, h = w.normed.base

        embed(pixels: pixels, images: images, into: x, workspace: w)
        if let preNorm = weights.preNorm { Kernels.layerNorm(x, into: x, rows: rows, preNorm, dim: a.embedDim, eps: eps) }

        for (layer, block) in weights.blocks.enumerated() {
            // x = x + MSA(LN₁(x))
            Kernels.layerNorm(x, into: h, rows: rows, block.norm1, dim: a.embedDim, eps: eps)
            linear(h, block.qkv, rows: rows, into: w.qkv.base)
            attention(qkv: w.qkv.base, images: images, output: h, scores: w.scores.base, layer: layer, recorder: recorder)
            linear(h, block.proj, rows: rows, accumulatingInto: x)
            // x = x + MLP(LN₂(x))
            Kernels.layerNorm(x, into: h, rows: rows, block.norm2, dim: a.embedDim, eps: eps)
            linear(h, block.fc1, rows: rows, into: w.hidden.base, activation: a.activation)
            linear(w.hidden.base, block.fc2, rows: rows, accumulatingInto: x)
        }

        classify(x, images: images, logits: logits, workspace: w)
    }

    /// `x₀ = [prefix tokens, patches·E + b] + pos`: the patch embedding is one GEMM over every patch of the batch.
    private func embed(pixels: UnsafePointer<Float>, images: Int, into x: UnsafeMutablePointer<Float>, workspace w: Workspace) {
        let a = architecture, d = a.embedDim, p = a.patchSize, n = a.tokens, prefix = a.prefixTokens
        let patchLength = a.channels * p * p, plane = a.imageHeight * a.imageWidth
        // Unfold patches: row (image, gy, gx), columns (channel, row in patch, column in patch), as the conv weight.
        let patches = w.patches.base
        for image in 0..<images {
            let source = pixels + image * a.channels * plane
            for gy in 0..<a.gridHeight {
                for gx in 0..<a.gridWidth {
                    var out = patches + ((image * a.gridHeight + gy) * a.gridWidth + gx) * patchLength
                    for c in 0..<a.channels {
                        for py in 0..<p {
                            out.update(from: source + c * plane + (gy * p + py) * a.imageWidth + gx * p, count: p)
                            out += p
                        }
                    }
                }
            }
        }
        // Each image's patch tokens go straight after its prefix tokens.
        let embedding = weights.patchEmbedding
        for image in 0..<images {
            let target = x + (image * n + prefix) * d
            BLAS.gemm(
                a.patchCount, d, patchLength, a: patches + image * a.patchCount * patchLength, lda: patchLength,
                b: embedding.weight.base, ldb: d, c: target, ldc: d)
            Kernels.addBias(target, rows: a.patchCount, columns: d, ld: d, bias: embedding.bias)
        }
        let pos = weights.positionEmbedding.base
        for image in 0..<images {
            let rows = x + image * n * d
            var t = 0
            for token in [weights.classToken, weights.distillationToken] { if let token { (rows + t * d).update(from: token.base, count: d); t += 1 } }
            if let registers = weights.registerTokens { (rows + t * d).update(from: registers.base, count: a.registerTokens * d) }
            // Position embeddings cover every token, or (timm no_embed_class) only the patches.
            let start = a.positionEmbeddingIncludesPrefix ? 0 : prefix
            for i in 0..<((n - start) * d) { rows[start * d + i] += pos[i] }
        }
    }

    /// Final norm, pooling, head: logits for each image.
    private func classify(_ x: UnsafeMutablePointer<Float>, images: Int, logits: UnsafeMutablePointer<Float>, workspace w: Workspace) {
        let a = architecture, d = a.embedDim, n = a.tokens
        let pooled = w.pooled.base, distilled = w.pooledDistillation.base
        for image in 0..<images {
            let rows = x + image * n * d
            switch a.pooling {
            case .token:
                pooled.advanced(by: image * d).update(from: rows, count: d)
                if a.distillationHead { distilled.advanced(by: image * d).update(from: rows + d, count: d) }
            case .average:
                if let norm = weights.finalNorm { Kernels.layerNorm(rows, into: rows, rows: n, norm, dim: d, eps: a.layerNormEps) }
                let target = pooled + image * d
                target.update(repeating: 0, count: d)
                for t in a.prefixTokens..<n { for i in 0..<d { target[i] += rows[t * d + i] } }
                for i in 0..<d { target[i] /= Float(a.patchCount) }
            }
        }
        // Token pooling: the final norm is per token, so only the pooled rows need it.
        if a.pooling == .token, let norm = weights.finalNorm {
            Kernels.layerNorm(pooled, into: pooled, rows: images, norm, dim: d, eps: a.layerNormEps)
            if a.distillationHead { Kernels.layerNorm(distilled, into: distilled, rows: images, norm, dim: d, eps: a.layerNormEps) }
        }
        if let norm = weights.poolNorm { Kernels.layerNorm(pooled, into: pooled, rows: images, norm, dim: d, eps: a.layerNormEps) }
        linear(pooled, weights.head, rows: images, into: logits)
        if let head = weights.distillationHead {
            // DeiT distilled: logits = (head(x_cls) + head_dist(x_dist)) / 2
            linear(distilled, head, rows: images, into: w.distillationLogits.base)
            for i in 0..<(images * a.numClasses) { logits[i] = (logits[i] + w.distillationLogits[i]) / 2 }
        }
    }

    /// `y = x·W + b` (then the activation, when given).
    private func linear(
        _ x: UnsafePointer<Float>, _ layer: Linear, rows: Int, into y: UnsafeMutablePointer<Float>,
        activation: ViTArchitecture.Activation? = nil
    ) {
        BLAS.gemm(rows, layer.outputs, layer.inputs, a: x, lda: layer.inputs, b: layer.weight.base, ldb: layer.outputs, c: y, ldc: layer.outputs)
        if let activation {
            Kernels.addBiasActivation(y, rows: rows, columns: layer.outputs, bias: layer.bias, activation)
        } else {
            Kernels.addBias(y, rows: rows, columns: layer.outputs, ld: layer.outputs, bias: layer.bias)
        }
    }

    /// `y = y + x·W + b`: the residual connection, accumulated by the GEMM itself.
    private func linear(_ x: UnsafePointer<Float>, _ layer: Linear, rows: Int, accumulatingInto y: UnsafeMutablePointer<Float>) {
        Kernels.addBias(y, rows: rows, columns: layer.outputs, ld: layer.outputs, bias: layer.bias)
        BLAS.gemm(rows, layer.outputs, layer.inputs, a: x, lda: layer.inputs, b: layer.weight.base, ldb: layer.outputs, beta: 1, c: y, ldc: layer.outputs)
    }
}

/// The activations of a forward pass for up to `capacity` images, allocated once and reused.
final class Workspace: @unchecked Sendable {
    let capacity: Int
    let tokens, normed, qkv, hidden, patches, scores, pooled, pooledDistillation, distillationLogits: FloatBuffer

    init(architecture a: ViTArchitecture, capacity: Int) {
        self.capacity = capacity
        let rows = capacity * a.tokens
        tokens = FloatBuffer(count: rows * a.embedDim)
        normed = FloatBuffer(count: rows * a.embedDim)
        qkv = FloatBuffer(count: rows * 3 * a.embedDim)
        hidden = FloatBuffer(count: rows * a.mlpDim)
        patches = FloatBuffer(count: capacity * a.patchCount * a.channels * a.patchSize * a.patchSize)
        scores = FloatBuffer(count: a.tokens * a.tokens)
        pooled = FloatBuffer(count: capacity * a.embedDim)
        pooledDistillation = FloatBuffer(count: capacity * a.embedDim)
        distillationLogits = FloatBuffer(count: capacity * a.numClasses)
    }
}
