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
    ///   - threads: how many threads of the shared pool to use (the result is the same bits for any count).
    func forward(
        pixels: UnsafePointer<Float>, images: Int, logits: UnsafeMutablePointer<Float>, workspace w: Workspace,
        recorder: AttentionRecorder? = nil, threads t: Int
    ) {
        precondition(images <= w.capacity, "workspace too small")
        let rows = images * architecture.tokens
        let x = w.tokens.base, h = w.normed.base

        embed(pixels: pixels, images: images, into: x, workspace: w, threads: t)
        if let preNorm = weights.preNorm { layerNorm(x, into: x, rows: rows, preNorm, threads: t) }

        for (layer, block) in weights.blocks.enumerated() {
            // x = x + MSA(LN₁(x))
            layerNorm(x, into: h, rows: rows, block.norm1, threads: t)
            block.qkv(h, rows: rows, into: w.qkv.base, threads: t)
            attention(
                qkv: w.qkv.base, images: images, output: h, scores: w.scores.base, layer: layer, recorder: recorder,
                threads: t)
            block.proj(h, rows: rows, into: x, accumulate: true, threads: t)
            // x = x + MLP(LN₂(x))
            layerNorm(x, into: h, rows: rows, block.norm2, threads: t)
            block.fc1(h, rows: rows, into: w.hidden.base, activation: architecture.activation, threads: t)
            block.fc2(w.hidden.base, rows: rows, into: x, accumulate: true, threads: t)
        }

        classify(x, images: images, logits: logits, workspace: w, threads: t)
    }

    /// `x₀ = [prefix tokens, patches·E + b] + pos`: the patch embedding is one GEMM over every patch of the batch.
    private func embed(
        pixels: UnsafePointer<Float>, images: Int, into x: UnsafeMutablePointer<Float>, workspace w: Workspace, threads: Int
    ) {
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
        // One GEMM over every patch of the batch, then each image's patch tokens go after its prefix tokens.
        let embedded = w.normed.base
        weights.patchEmbedding(patches, rows: images * a.patchCount, into: embedded, threads: threads)
        let pos = weights.positionEmbedding.base
        for image in 0..<images {
            let rows = x + image * n * d
            (rows + prefix * d).update(from: embedded + image * a.patchCount * d, count: a.patchCount * d)
            var t = 0
            if let cls = weights.classToken { rows.update(from: cls.base, count: d); t += 1 }
            if let dist = weights.distillationToken { (rows + t * d).update(from: dist.base, count: d); t += 1 }
            if let registers = weights.registerTokens { (rows + t * d).update(from: registers.base, count: a.registerTokens * d) }
            // Position embeddings cover every token, or (timm no_embed_class) only the patches.
            let start = a.positionEmbeddingIncludesPrefix ? 0 : prefix
            for i in 0..<((n - start) * d) { rows[start * d + i] += pos[i] }
        }
    }

    /// Final norm, pooling, head: logits for each image.
    private func classify(
        _ x: UnsafeMutablePointer<Float>, images: Int, logits: UnsafeMutablePointer<Float>, workspace w: Workspace,
        threads: Int
    ) {
        let a = architecture, d = a.embedDim, n = a.tokens
        let pooled = w.pooled.base, distilled = w.pooledDistillation.base
        for image in 0..<images {
            let rows = x + image * n * d
            switch a.pooling {
            case .token:
                pooled.advanced(by: image * d).update(from: rows, count: d)
                if a.distillationHead { distilled.advanced(by: image * d).update(from: rows + d, count: d) }
            case .average:
                if let norm = weights.finalNorm {
                    Kernels.layerNorm(rows, into: rows, rows: n, norm, dim: d, eps: a.layerNormEps)
                }
                let target = pooled + image * d
                target.update(repeating: 0, count: d)
                for t in a.prefixTokens..<n { for i in 0..<d { target[i] += rows[t * d + i] } }
                for i in 0..<d { target[i] /= Float(a.patchCount) }
            }
        }
        // Token pooling: the final norm is per token, so only the pooled rows need it.
        if a.pooling == .token, let norm = weights.finalNorm {
            Kernels.layerNorm(pooled, into: pooled, rows: images, norm, dim: d, eps: a.layerNormEps)
            if a.distillationHead {
                Kernels.layerNorm(distilled, into: distilled, rows: images, norm, dim: d, eps: a.layerNormEps)
            }
        }
        if let norm = weights.poolNorm {
            Kernels.layerNorm(pooled, into: pooled, rows: images, norm, dim: d, eps: a.layerNormEps)
        }
        weights.head(pooled, rows: images, into: logits, threads: threads)
        if let head = weights.distillationHead {
            // DeiT distilled: logits = (head(x_cls) + head_dist(x_dist)) / 2
            head(distilled, rows: images, into: w.distillationLogits.base, threads: threads)
            for i in 0..<(images * a.numClasses) { logits[i] = (logits[i] + w.distillationLogits[i]) / 2 }
        }
    }

    /// Row-wise LayerNorm, rows split over the threads.
    private func layerNorm(
        _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, _ p: LayerNormParameters, threads: Int
    ) {
        let d = architecture.embedDim, eps = architecture.layerNormEps
        Compute.parallelRows(rows, threads: threads) { range in
            Kernels.layerNorm(x + range.lowerBound * d, into: y + range.lowerBound * d, rows: range.count, p, dim: d, eps: eps)
        }
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
        scores = FloatBuffer(
            count: AttentionCore(heads: a.heads, headDim: a.headDim, tokens: a.tokens).scratchCount(images: capacity))
        pooled = FloatBuffer(count: capacity * a.embedDim)
        pooledDistillation = FloatBuffer(count: capacity * a.embedDim)
        distillationLogits = FloatBuffer(count: capacity * a.numClasses)
    }
}
