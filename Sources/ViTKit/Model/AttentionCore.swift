/// Scaled dot-product multi-head self-attention — the one attention core every encoder block calls.
///
/// For each image and head h, with `Q_h`, `K_h`, `V_h` the head's columns of the fused projection:
///
///     A_h = softmax(Q_h·K_hᵀ / √d_k)        (N × N, row-wise softmax)
///     O_h = A_h·V_h                          (N × d_k)
///
/// Heads are read in place from the `[q | k | v]` rows through leading dimensions (no copies) and each `O_h`
/// is written into its columns of the output, so the heads come out concatenated in head order.
struct AttentionCore {
    let heads: Int
    let headDim: Int
    let tokens: Int

    var embedDim: Int { heads * headDim }
    var scale: Float { 1 / Float(headDim).squareRoot() }

    /// Query rows per work item. An item packs its head's `K_hᵀ` and `V_h` once (as much work per element as the
    /// products do per query row), so it takes all of an image's rows for one head unless that leaves fewer than two
    /// items per thread (3 heads of one image on 2 threads would leave one thread idle a third of the time) or a
    /// part's scores would outgrow 64 K floats (256 KB, kept in L2 from the product through the softmax). Each element
    /// of the products depends on its own row and column alone
    /// (``Kernels/gemm(_:_:_:alpha:a:lda:b:ldb:transposeB:c:ldc:)``), so the split never changes a bit: a row is the
    /// same for an image alone or batched, on any number of threads.
    func partRows(images: Int, threads: Int) -> Int {
        let forThreads = (2 * max(1, threads) + images * heads - 1) / max(1, images * heads)
        let forCache = (tokens * tokens + 65535) / 65536
        let parts = min(tokens, max(1, forThreads, forCache))
        return (tokens + parts - 1) / parts
    }

    /// Scratch floats for the scores of `images` images: one part's score rows per thread that runs at once (at
    /// most `threads`, and never more than there are work items), and at least the attention-pool head's
    /// `heads × tokens`. Fewer images or threads at call time need no more. The scratch size changes where a part's
    /// scores are kept, never what they are.
    func scratchCount(images: Int, threads: Int) -> Int {
        let rows = partRows(images: images, threads: threads), parts = (tokens + rows - 1) / rows
        return max(min(images * heads * parts, max(1, threads)) * rows * tokens, heads * tokens)
    }

    /// - Parameters:
    ///   - qkv: `[images · tokens][3 · D]`, the fused projection of the normalised tokens.
    ///   - output: `[images · tokens][D]`, receives the concatenated heads.
    ///   - scores: scratch of `scoresCount` ≥ `partRows × tokens` floats (``scratchCount(images:threads:)``): as
    ///     many threads as it has room for parts at once.
    ///   - bias: `[heads][tokens][tokens]` added to the scaled scores before the softmax (BEiT's relative position
    ///     bias), or nil.
    ///   - recorder: when non-nil, receives every head's attention probabilities (nothing is kept otherwise).
    func callAsFunction(
        qkv: UnsafePointer<Float>, images: Int, output: UnsafeMutablePointer<Float>,
        scores: UnsafeMutablePointer<Float>, scoresCount: Int, bias: UnsafePointer<Float>? = nil, layer: Int,
        recorder: AttentionRecorder?, threads: Int
    ) {
        let n = tokens, d = embedDim, ld = 3 * d
        // Fewer rows per part when the scratch (sized for the workspace's capacity and default threads) has no room
        // for one part at this call's thread count.
        let partRows = min(partRows(images: images, threads: threads), max(1, scoresCount / n))
        let parts = (n + partRows - 1) / partRows
        // Work items (image, head, part of the query rows) are independent; the pool hands them out dynamically, and
        // each thread keeps its item's scores in its own slot of the scratch.
        let slots = min(scoresCount / (partRows * n), threads)
        Compute.parallelFor(images * heads * parts, threads: slots) { item, slot in
            let part = item % parts, pair = item / parts, image = pair / heads, h = pair % heads
            let first = part * partRows, count = min(partRows, n - first)
            guard count > 0 else { return }
            let s = scores + slot * partRows * n
            let rows = qkv + image * n * ld
            let q = rows + first * ld + h * headDim, k = rows + d + h * headDim, v = rows + 2 * d + h * headDim
            Kernels.gemm(count, n, headDim, alpha: scale, a: q, lda: ld, b: k, ldb: ld, transposeB: true, c: s, ldc: n)
            if let bias {
                let b = bias + (h * n + first) * n
                for i in 0..<(count * n) { s[i] += b[i] }
            }
            Kernels.softmaxRows(s, rows: count, columns: n, ld: n)
            recorder?.record(layer: layer, image: image, head: h, firstRow: first, rows: count, probabilities: s)
            Kernels.gemm(count, headDim, n, a: s, lda: n, b: v, ldb: ld, c: output + (image * n + first) * d + h * headDim, ldc: d)
        }
    }
}

extension AttentionCore {
    /// The attention-pool head's cross-attention: one query `[D]` over `keys` rows `[k | v]` (2·D wide), with the same
    /// per-head products as the self-attention; `output` receives the concatenated heads `[D]`.
    func pool(
        query q: UnsafePointer<Float>, kv: UnsafePointer<Float>, keys: Int, output: UnsafeMutablePointer<Float>,
        scores: UnsafeMutablePointer<Float>
    ) {
        let d = embedDim
        for h in 0..<heads {
            let s = scores + h * keys
            Kernels.gemm(1, keys, headDim, alpha: scale, a: q + h * headDim, lda: d, b: kv + h * headDim, ldb: 2 * d, transposeB: true, c: s, ldc: keys)
            Kernels.softmaxRows(s, rows: 1, columns: keys, ld: keys)
            Kernels.gemm(1, headDim, keys, a: s, lda: keys, b: kv + d + h * headDim, ldb: 2 * d, c: output + h * headDim, ldc: d)
        }
    }
}

/// Receives the attention probabilities of every layer and head during a forward pass.
///
/// Stores the full `tokens × tokens` matrix of each (image, layer, head): rollout needs all rows, the maps need the
/// class token's row. Created only when attention is requested.
package final class AttentionRecorder: @unchecked Sendable {
    package let images: Int
    package let layers: Int
    package let heads: Int
    package let tokens: Int
    /// `[images][layers][heads][tokens][tokens]`; written from several threads, each (image, layer, head) by one.
    private let storage: FloatBuffer

    package init(images: Int, layers: Int, heads: Int, tokens: Int) {
        self.images = images
        self.layers = layers
        self.heads = heads
        self.tokens = tokens
        storage = FloatBuffer(count: images * layers * heads * tokens * tokens)
    }

    /// Stores rows `firstRow..<firstRow+rows` of one head's attention matrix.
    func record(layer: Int, image: Int, head: Int, firstRow: Int, rows: Int, probabilities: UnsafePointer<Float>) {
        let offset = ((image * layers + layer) * heads + head) * tokens * tokens + firstRow * tokens
        (storage.base + offset).update(from: probabilities, count: rows * tokens)
    }

    /// One head's `tokens × tokens` probabilities, in place (for the backward pass).
    func probabilities(image: Int, layer: Int, head: Int) -> UnsafePointer<Float> {
        UnsafePointer(storage.base + ((image * layers + layer) * heads + head) * tokens * tokens)
    }

    /// The attention of one image as `[layers][heads][tokens·tokens]`.
    package func attention(image: Int) -> [[[Float]]] {
        let size = tokens * tokens
        return (0..<layers).map { l in
            (0..<heads).map { h in
                let offset = ((image * layers + l) * heads + h) * size
                return Array(UnsafeBufferPointer(start: storage.base + offset, count: size))
            }
        }
    }
}
