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

    /// Query rows are handed out in blocks of at most 64, so that even one image has enough independent work
    /// items to keep every thread busy (3 heads on 2 threads would otherwise leave one idle a third of the time).
    /// The blocks depend on the token count alone — never on the batch or the threads; and each product's element
    /// depends on its own row and column alone (``Kernels/gemm(_:_:_:alpha:a:lda:b:ldb:transposeB:c:ldc:)``), so a
    /// row's bits are the same for an image alone or batched.
    var queryBlocks: Int { (tokens + 63) / 64 }
    var blockRows: Int { (tokens + queryBlocks - 1) / queryBlocks }

    /// Scratch floats for the scores of `images` images: one block of score rows per thread that runs at once (at
    /// most `threads`, and never more than there are work items), and at least the attention-pool head's
    /// `heads × tokens`. The scratch size changes where a block's scores are kept, never what they are.
    func scratchCount(images: Int, threads: Int) -> Int {
        max(min(images * heads * queryBlocks, max(1, threads)) * blockRows * tokens, heads * tokens)
    }

    /// - Parameters:
    ///   - qkv: `[images · tokens][3 · D]`, the fused projection of the normalised tokens.
    ///   - output: `[images · tokens][D]`, receives the concatenated heads.
    ///   - scores: scratch of `scoresCount` ≥ `blockRows × tokens` floats (``scratchCount(images:threads:)``): as
    ///     many threads as it has room for blocks of work at once.
    ///   - bias: `[heads][tokens][tokens]` added to the scaled scores before the softmax (BEiT's relative position
    ///     bias), or nil.
    ///   - recorder: when non-nil, receives every head's attention probabilities (nothing is kept otherwise).
    func callAsFunction(
        qkv: UnsafePointer<Float>, images: Int, output: UnsafeMutablePointer<Float>,
        scores: UnsafeMutablePointer<Float>, scoresCount: Int, bias: UnsafePointer<Float>? = nil, layer: Int,
        recorder: AttentionRecorder?, threads: Int
    ) {
        let n = tokens, d = embedDim, ld = 3 * d
        let blocks = queryBlocks, blockRows = blockRows
        // Work items (image, head, block of query rows) are independent; the pool hands them out dynamically, and
        // each thread keeps its item's scores in its own slot of the scratch.
        let slots = min(scoresCount / (blockRows * n), threads)
        Compute.parallelFor(images * heads * blocks, threads: slots) { item, slot in
            let block = item % blocks, pair = item / blocks, image = pair / heads, h = pair % heads
            let first = block * blockRows, count = min(blockRows, n - first)
            guard count > 0 else { return }
            let s = scores + slot * blockRows * n
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
