import Foundation

/// The position encodings other than a learned absolute embedding: BEiT's relative position bias and the 2-D
/// rotary embedding of EVA-02 / RoPE-ViT, both expanded once at load into what the forward pass adds or multiplies.

/// BEiT's relative position bias (timm `beit.py` `gen_relative_position_index` + `Attention`, timm 1.0.31): a learned
/// table of `(2H−1)(2W−1) + 3` rows × heads, indexed by the offset between two patches, with three extra rows for
/// class-token query, class-token key, and class to class.
struct RelativePositionBias {
    /// `[heads][tokens][tokens]`, added to `q·kᵀ·scale` before the softmax.
    let matrix: [Float]

    /// - Parameter table: reads the table with the given shape (`[(2H−1)(2W−1)+3, heads]`).
    init(architecture a: ViTArchitecture, table: ([Int]) throws -> [Float]) throws {
        let gh = a.gridHeight, gw = a.gridWidth, heads = a.heads, n = a.tokens
        let distances = (2 * gh - 1) * (2 * gw - 1) + 3
        let values = try table([distances, heads])
        // Token 0 is the class token (BEiT has exactly one prefix token); patches follow row by row.
        var index = [Int](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n {
                if i == 0 && j == 0 {
                    index[i * n + j] = distances - 1
                } else if j == 0 {
                    index[i * n + j] = distances - 2
                } else if i == 0 {
                    index[i * n + j] = distances - 3
                } else {
                    let (yi, xi) = ((i - 1) / gw, (i - 1) % gw), (yj, xj) = ((j - 1) / gw, (j - 1) % gw)
                    index[i * n + j] = (yi - yj + gh - 1) * (2 * gw - 1) + (xi - xj + gw - 1)
                }
            }
        }
        var matrix = [Float](repeating: 0, count: heads * n * n)
        for h in 0..<heads { for e in 0..<(n * n) { matrix[h * n * n + e] = values[index[e] * heads + h] } }
        self.matrix = matrix
    }
}

/// timm's `RotaryEmbeddingCat` (`layers/pos_embed_sincos.py`, timm 1.0.31) for a fixed grid: per patch token, the sine
/// and cosine of `head_dim/2` angles, each repeated for the two elements of its pair, computed in float32 as timm does.
struct RotaryTables {
    /// `[patches][headDim]` each.
    let sin: [Float]
    let cos: [Float]
    let headDim: Int

    init(architecture a: ViTArchitecture, rotary r: ViTArchitecture.Rotary) {
        let hd = a.headDim, bands = hd / 4
        // bands_k = 1 / T^(k / bands)
        let frequencies = (0..<bands).map { k in 1 / Float(pow(Double(r.temperature), Double(Float(k) / Float(bands)))) }
        let grid = [a.gridHeight, a.gridWidth]
        func coordinate(_ i: Int, axis: Int) -> Float {
            var t = Float(i) + r.gridOffset
            if let reference = r.referenceGrid { t = t / Float(grid[axis]) * Float(reference[axis]) }
            return t
        }
        var sin = [Float](repeating: 0, count: a.patchCount * hd), cos = sin
        for y in 0..<a.gridHeight {
            for x in 0..<a.gridWidth {
                let p = y * a.gridWidth + x
                let first = r.rowFirst ? coordinate(y, axis: 0) : coordinate(x, axis: 1)
                let second = r.rowFirst ? coordinate(x, axis: 1) : coordinate(y, axis: 0)
                for (half, t) in [first, second].enumerated() {
                    for k in 0..<bands {
                        let angle = t * frequencies[k]
                        let s = Float(Foundation.sin(Double(angle))), c = Float(Foundation.cos(Double(angle)))
                        let e = p * hd + 2 * (half * bands + k)
                        sin[e] = s
                        sin[e + 1] = s
                        cos[e] = c
                        cos[e + 1] = c
                    }
                }
            }
        }
        (self.sin, self.cos, headDim) = (sin, cos, hd)
    }

    /// Rotates the queries and keys of the patch tokens in place: `x·cos + rot(x)·sin` with
    /// `rot(x) = (−x₁, x₀, −x₃, x₂, …)` per head, for `images` images of `tokens` rows `[q | k | v]` (3·D wide).
    func rotate(_ qkv: UnsafeMutablePointer<Float>, images: Int, tokens: Int, prefix: Int, embedDim d: Int) {
        let hd = headDim
        sin.withUnsafeBufferPointer { sin in
            cos.withUnsafeBufferPointer { cos in
                for image in 0..<images {
                    for t in prefix..<tokens {
                        let row = qkv + (image * tokens + t) * 3 * d
                        let s = sin.baseAddress! + (t - prefix) * hd, c = cos.baseAddress! + (t - prefix) * hd
                        for start in stride(from: 0, to: 2 * d, by: hd) {  // every head of q, then of k
                            let x = row + start
                            for i in stride(from: 0, to: hd, by: 2) {
                                let x0 = x[i], x1 = x[i + 1]
                                x[i] = x0 * c[i] - x1 * s[i]
                                x[i + 1] = x1 * c[i + 1] + x0 * s[i + 1]
                            }
                        }
                    }
                }
            }
        }
    }
}
