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

    /// - Parameters:
    ///   - qkv: `[images · tokens][3 · D]`, the fused projection of the normalised tokens.
    ///   - output: `[images · tokens][D]`, receives the concatenated heads.
    ///   - scores: scratch of `tokens × tokens` floats per thread (``Compute/threads``).
    ///   - recorder: when non-nil, receives every head's attention probabilities (nothing is kept otherwise).
    func callAsFunction(
        qkv: UnsafePointer<Float>, images: Int, output: UnsafeMutablePointer<Float>,
        scores: UnsafeMutablePointer<Float>, layer: Int, recorder: AttentionRecorder?
    ) {
        let n = tokens, d = embedDim, ld = 3 * d, pairs = images * heads, slots = min(Compute.threads, pairs)
        // (image, head) pairs are independent: each thread takes every slots-th pair with its own scores buffer.
        Compute.parallelFor(slots) { slot in
            let s = scores + slot * n * n
            for pair in stride(from: slot, to: pairs, by: slots) {
                let image = pair / heads, h = pair % heads
                let rows = qkv + image * n * ld
                let q = rows + h * headDim, k = rows + d + h * headDim, v = rows + 2 * d + h * headDim
                BLAS.gemm(n, n, headDim, alpha: scale, a: q, lda: ld, b: k, ldb: ld, transposeB: true, c: s, ldc: n)
                Kernels.softmaxRows(s, rows: n, columns: n, ld: n)
                recorder?.record(layer: layer, image: image, head: h, probabilities: s)
                BLAS.gemm(n, headDim, n, a: s, lda: n, b: v, ldb: ld, c: output + image * n * d + h * headDim, ldc: d)
            }
        }
    }
}

/// Receives the attention probabilities of every layer and head during a forward pass.
///
/// Stores the full `tokens × tokens` matrix of each (image, layer, head): rollout needs all rows, the maps need the
/// class token's row. Created only when attention is requested.
public final class AttentionRecorder: @unchecked Sendable {
    public let images: Int
    public let layers: Int
    public let heads: Int
    public let tokens: Int
    /// `[images][layers][heads][tokens][tokens]`; written from several threads, each (image, layer, head) by one.
    private let storage: FloatBuffer

    public init(images: Int, layers: Int, heads: Int, tokens: Int) {
        self.images = images
        self.layers = layers
        self.heads = heads
        self.tokens = tokens
        storage = FloatBuffer(count: images * layers * heads * tokens * tokens)
    }

    func record(layer: Int, image: Int, head: Int, probabilities: UnsafePointer<Float>) {
        let size = tokens * tokens
        let offset = ((image * layers + layer) * heads + head) * size
        (storage.base + offset).update(from: probabilities, count: size)
    }

    /// The attention of one image as `[layers][heads][tokens·tokens]`.
    public func attention(image: Int) -> [[[Float]]] {
        let size = tokens * tokens
        return (0..<layers).map { l in
            (0..<heads).map { h in
                let offset = ((image * layers + l) * heads + h) * size
                return Array(UnsafeBufferPointer(start: storage.base + offset, count: size))
            }
        }
    }
}
