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
/// The families differ at a few points only (``ViTArchitecture``): residual post-norm blocks
/// (`x = x + LN₁(MSA(x))`), rotary embeddings turning Q and K before the core, a relative position bias added to the
/// scores inside it, a LayerNorm before the output projection or `W₂` (sub-LN), and gated MLPs (`act(g)·v`).
///
/// Nothing here knows about files, formats or images: pixels in (already preprocessed), logits out.
package final class VisionTransformer: @unchecked Sendable {
    package let architecture: ViTArchitecture
    let weights: ViTWeights
    let attention: AttentionCore
    let rotary: RotaryTables?
    /// The attention-pool head's heads (the same core, with its own head count).
    let poolAttention: AttentionCore

    init(architecture: ViTArchitecture, weights: ViTWeights) {
        self.architecture = architecture
        self.weights = weights
        attention = AttentionCore(heads: architecture.heads, headDim: architecture.headDim, tokens: architecture.tokens)
        poolAttention = AttentionCore(
            heads: max(architecture.attentionPoolHeads, 1), headDim: architecture.embedDim / max(architecture.attentionPoolHeads, 1),
            tokens: architecture.tokens)
        rotary = architecture.rotary.map { RotaryTables(architecture: architecture, rotary: $0, learned: weights.rotaryFrequencies) }
    }

    /// Runs `images` preprocessed images through the network.
    ///
    /// - Parameters:
    ///   - pixels: `[images][channels][height][width]` at the architecture's input size.
    ///   - logits: receives `[images][numClasses]`.
    ///   - workspace: activations, allocated once (``Workspace``) and reused: nothing is allocated here.
    ///   - recorder: receives every layer's attention probabilities when non-nil.
    ///   - trace: keeps what ``Backward`` needs (pre-norm blocks only), when an explanation is requested.
    ///   - threads: how many threads of the shared pool to use (the result is the same bits for any count).
    func forward(
        pixels: UnsafePointer<Float>, images: Int, logits: UnsafeMutablePointer<Float>, workspace w: Workspace,
        recorder: AttentionRecorder? = nil, trace: ForwardTrace? = nil, threads t: Int
    ) {
        precondition(images <= w.capacity, "workspace too small")
        precondition(trace == nil || (trace!.images == images && architecture.block == .preNorm), "trace mismatch")
        let rows = images * architecture.tokens
        let x = w.tokens.base, h = w.normed.base

        embed(pixels: pixels, images: images, into: x, workspace: w, threads: t)
        trace?.keep(x, in: trace?.embedded)
        if let preNorm = weights.preNorm { layerNorm(x, into: x, rows: rows, preNorm, threads: t) }

        for (layer, block) in weights.blocks.enumerated() {
            switch architecture.block {
            case .preNorm:
                // x = x + MSA(LN₁(x))
                trace?.keep(x, in: trace?.blockInput(layer))
                layerNorm(x, into: h, rows: rows, block.norm1, threads: t)
                selfAttention(h, block, layer: layer, images: images, into: x, accumulate: true, w, recorder, trace, threads: t)
                // x = x + MLP(LN₂(x))
                trace?.keep(x, in: trace?.middle(layer))
                layerNorm(x, into: h, rows: rows, block.norm2, threads: t)
                mlp(h, block, rows: rows, into: x, accumulate: true, w, preActivation: trace?.preActivation(layer), threads: t)
            case .residualPostNorm:
                // x = x + LN₁(MSA(x))      (the attention's output goes through `hidden`, free until the MLP)
                selfAttention(x, block, layer: layer, images: images, into: w.hidden.base, accumulate: false, w, recorder, threads: t)
                addLayerNorm(w.hidden.base, to: x, rows: rows, block.norm1, threads: t)
                // x = x + LN₂(MLP(x))
                mlp(x, block, rows: rows, into: h, accumulate: false, w, threads: t)
                addLayerNorm(h, to: x, rows: rows, block.norm2, threads: t)
            }
        }

        trace?.keep(x, in: trace?.blockInput(weights.blocks.count))
        classify(x, images: images, logits: logits, workspace: w, threads: t)
    }

    /// `output (+)= proj(MSA(qkv(input)))`: the fused projection, RoPE on Q and K, the attention core (plus the relative
    /// position bias), a sub-LN, the output projection. The heads are written to `normed`, free once Q, K, V exist.
    private func selfAttention(
        _ input: UnsafePointer<Float>, _ block: BlockWeights, layer: Int, images: Int, into output: UnsafeMutablePointer<Float>,
        accumulate: Bool, _ w: Workspace, _ recorder: AttentionRecorder?, _ trace: ForwardTrace? = nil, threads t: Int
    ) {
        let a = architecture, rows = images * a.tokens, heads = w.normed.base
        block.qkv(input, rows: rows, into: w.qkv.base, threads: t)
        rotary?.rotate(w.qkv.base, images: images, tokens: a.tokens, prefix: a.prefixTokens, embedDim: a.embedDim, layer: layer, threads: t)
        attention(
            qkv: w.qkv.base, images: images, output: heads, scores: w.scores.base, scoresCount: w.scores.count,
            bias: block.relativeBias?.base, layer: layer, recorder: recorder, threads: t)
        trace?.keep(w.qkv.base, in: trace?.qkv(layer))
        trace?.keep(heads, in: trace?.heads(layer))
        if let norm = block.attentionNorm { layerNorm(heads, into: heads, rows: rows, norm, threads: t) }
        block.proj(heads, rows: rows, into: output, accumulate: accumulate, threads: t)
    }

    /// `output (+)= fc2(act(fc1(input)))`, or `fc2(act(g)·v)` with `[g | v] = fc1(input)`, with an optional sub-LN
    /// before `fc2`. Rows go through in chunks of ``Workspace/mlpChunkRows`` (every row is computed on its own, so
    /// the chunks change the memory the hidden activations take, not one bit of the result).
    private func mlp(
        _ input: UnsafePointer<Float>, _ block: BlockWeights, rows: Int, into output: UnsafeMutablePointer<Float>,
        accumulate: Bool, _ w: Workspace, preActivation: UnsafeMutablePointer<Float>? = nil, threads t: Int
    ) {
        let a = architecture, hidden = w.hidden.base, chunk = w.mlpChunkRows
        for start in stride(from: 0, to: rows, by: chunk) {
            let n = min(chunk, rows - start), x = input + start * a.embedDim
            switch a.mlp {
            case .standard:
                if let preActivation {  // kept for the backward pass: the same bits as the fused activation
                    let kept = preActivation + start * a.mlpDim
                    block.fc1(x, rows: n, into: kept, threads: t)
                    hidden.update(from: kept, count: n * a.mlpDim)
                    Compute.parallelRows(n, threads: t) { range in
                        Kernels.activate(hidden + range.lowerBound * a.mlpDim, rows: range.count, columns: a.mlpDim, a.activation)
                    }
                } else {
                    block.fc1(x, rows: n, into: hidden, activation: a.activation, threads: t)
                }
            case .gated:
                block.fc1(x, rows: n, into: w.gated.base, threads: t)
                Compute.parallelRows(n, threads: t) { range in
                    Kernels.glu(
                        w.gated.base + range.lowerBound * 2 * a.mlpDim, into: hidden + range.lowerBound * a.mlpDim,
                        rows: range.count, hidden: a.mlpDim, a.activation)
                }
            }
            if let norm = block.mlpNorm { layerNorm(hidden, into: hidden, rows: n, norm, dim: a.mlpDim, threads: t) }
            block.fc2(hidden, rows: n, into: output + start * a.embedDim, accumulate: accumulate, threads: t)
        }
    }

    /// `x += LN(y)` row by row (`y` is overwritten).
    private func addLayerNorm(
        _ y: UnsafeMutablePointer<Float>, to x: UnsafeMutablePointer<Float>, rows: Int, _ p: LayerNormParameters, threads: Int
    ) {
        let d = architecture.embedDim
        layerNorm(y, into: y, rows: rows, p, threads: threads)
        Compute.parallelRows(rows, threads: threads) { range in
            for i in (range.lowerBound * d)..<(range.upperBound * d) { x[i] += y[i] }
        }
    }

    /// `x₀ = [prefix tokens, patches·E + b] + pos`: the patch embedding is one GEMM over every patch of the batch.
    private func embed(
        pixels: UnsafePointer<Float>, images: Int, into x: UnsafeMutablePointer<Float>, workspace w: Workspace, threads: Int
    ) {
        let a = architecture, d = a.embedDim, p = a.patchSize, n = a.tokens, prefix = a.prefixTokens
        let patchLength = a.channels * p * p, plane = a.imageHeight * a.imageWidth
        // Unfold patches: row (image, gy, gx), columns (channel, row in patch, column in patch), as the conv weight.
        // They go in the qkv buffer, free until the first block.
        let patches = w.qkv.base
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
            // Position embeddings cover every token, or (timm no_embed_class) only the patches, or none (RoPE, BEiT).
            guard a.absolutePositionEmbedding else { continue }
            if a.positionEmbeddingSkipsRegisters {  // [cls, registers, patches] + [pos(cls), 0, pos(patches)]
                for i in 0..<d { rows[i] += pos[i] }
                for i in 0..<(a.patchCount * d) { rows[prefix * d + i] += pos[d + i] }
                continue
            }
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
            case .tokenAndAverage:
                if let norm = weights.finalNorm {
                    Kernels.layerNorm(rows, into: rows, rows: n, norm, dim: d, eps: a.layerNormEps)
                }
                let target = pooled + image * 2 * d
                target.update(from: rows, count: d)
                (target + d).update(repeating: 0, count: d)
                for t in a.prefixTokens..<n { for i in 0..<d { target[d + i] += rows[t * d + i] } }
                for i in 0..<d { target[d + i] /= Float(a.patchCount) }
            case .attentionPool:
                if let norm = weights.finalNorm {
                    Kernels.layerNorm(rows, into: rows, rows: n, norm, dim: d, eps: a.layerNormEps)
                }
                attentionPool(rows, into: pooled + image * d, workspace: w, threads: threads)
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

    /// The attention-pool head for one image's tokens: `o = proj(attend(q(latent), kv(tokens)))`, `y = o + MLP(LN(o))`.
    private func attentionPool(
        _ rows: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, workspace w: Workspace, threads: Int
    ) {
        let a = architecture, d = a.embedDim, pool = weights.attentionPool!
        let first = a.attentionPoolIncludesPrefix ? 0 : a.prefixTokens, keys = a.tokens - first
        pool.kv(rows + first * d, rows: keys, into: w.qkv.base, threads: threads)
        poolAttention.pool(query: pool.query.base, kv: w.qkv.base, keys: keys, output: w.normed.base, scores: w.scores.base)
        pool.proj(w.normed.base, rows: 1, into: y, threads: threads)
        Kernels.layerNorm(y, into: w.normed.base, rows: 1, pool.norm, dim: d, eps: a.layerNormEps)
        pool.fc1(w.normed.base, rows: 1, into: w.hidden.base, activation: pool.activation, threads: threads)
        pool.fc2(w.hidden.base, rows: 1, into: y, accumulate: true, threads: threads)
    }

    /// Row-wise LayerNorm, rows split over the threads.
    private func layerNorm(
        _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, _ p: LayerNormParameters, dim: Int? = nil,
        threads: Int
    ) {
        let d = dim ?? architecture.embedDim, eps = architecture.layerNormEps
        Compute.parallelRows(rows, threads: threads) { range in
            Kernels.layerNorm(x + range.lowerBound * d, into: y + range.lowerBound * d, rows: range.count, p, dim: d, eps: eps)
        }
    }
}

/// The activations of a forward pass for up to `capacity` images, allocated once and reused.
final class Workspace: @unchecked Sendable {
    /// Rows per chunk of the MLP, whose widest activations (fc1's output) take at most `mlpChunkBytes` (4 MB by
    /// default: ViT-B/16 341 rows, so batch 8 keeps 4 MB of hidden activations instead of 19 MB; a small model's
    /// whole batch is one chunk).
    let mlpChunkRows: Int

    let capacity: Int
    let tokens, normed, qkv, hidden, gated, scores, pooled, pooledDistillation, distillationLogits: FloatBuffer

    init(architecture a: ViTArchitecture, capacity: Int, mlpChunkBytes: Int = 4 << 20) {
        self.capacity = capacity
        let rows = capacity * a.tokens
        mlpChunkRows = max(1, min(rows, mlpChunkBytes / (MemoryLayout<Float>.size * max(1, a.fc1Outputs))))
        tokens = FloatBuffer(count: rows * a.embedDim)
        normed = FloatBuffer(count: rows * a.embedDim)
        // qkv also holds the unfolded patches of the embedding.
        qkv = FloatBuffer(count: max(rows * 3 * a.embedDim, capacity * a.patchCount * a.channels * a.patchSize * a.patchSize))
        hidden = FloatBuffer(count: max(mlpChunkRows * a.mlpDim, rows * a.embedDim))  // also the post-norm blocks' attention output
        gated = FloatBuffer(count: a.mlp == .gated ? mlpChunkRows * a.fc1Outputs : 0)
        scores = FloatBuffer(
            count: AttentionCore(heads: a.heads, headDim: a.headDim, tokens: a.tokens)
                .scratchCount(images: capacity, threads: Compute.defaultThreads))
        pooled = FloatBuffer(count: capacity * a.headInputs)
        pooledDistillation = FloatBuffer(count: capacity * a.embedDim)
        distillationLogits = FloatBuffer(count: capacity * a.numClasses)
    }
}
