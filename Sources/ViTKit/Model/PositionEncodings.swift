import Foundation

/// The position encodings other than a learned absolute embedding: BEiT's relative position bias and the 2-D
/// rotary embedding of EVA-02 / RoPE-ViT, both expanded once at load into what the forward pass adds or multiplies.

/// BEiT's relative position bias (timm `beit.py` `gen_relative_position_index` + `Attention`, timm 1.0.31): a learned
/// table of `(2H−1)(2W−1) + 3` rows × heads, indexed by the offset between two patches, with three extra rows for
/// class-token query, class-token key, and class to class.
struct RelativePositionBias {
    /// `[heads][tokens][tokens]`, added to `q·kᵀ·scale` before the softmax.
    let matrix: [Float]
    /// The learned table, `[(2H−1)(2W−1)+3][heads]` (kept to rebuild the matrix for another input size).
    let table: [Float]

    /// - Parameter table: reads the table with the given shape (`[(2H−1)(2W−1)+3, heads]`).
    init(architecture a: ViTArchitecture, table: ([Int]) throws -> [Float]) throws {
        let gh = a.gridHeight, gw = a.gridWidth, heads = a.heads, n = a.tokens
        let distances = (2 * gh - 1) * (2 * gw - 1) + 3
        let values = try table([distances, heads])
        self.table = values
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

extension RelativePositionBias {
    /// timm's `resize_rel_pos_bias_table` (`layers/pos_embed_rel.py`, from BEiT's fine-tuning code): the
    /// `(2H−1)(2W−1)` offsets of a `[rows][heads]` table resampled from one grid to another, per head, by linear
    /// interpolation between source offsets placed on a geometric progression (timm's `RegularGridInterpolator`,
    /// float32); the three class-token rows are kept.
    static func resample(_ table: [Float], heads: Int, from old: (Int, Int), to new: (Int, Int)) -> [Float] {
        let src = (2 * old.0 - 1, 2 * old.1 - 1), dst = (2 * new.0 - 1, 2 * new.1 - 1)
        if src == dst { return table }
        /// Source offsets: ±(1, 1 + q, 1 + q + q², …) with q found by bisection so that the progression reaches dst/2.
        func positions(_ src: Int, _ dst: Int) -> [Float] {
            func progression(_ r: Double, _ n: Int) -> Double { (1 - pow(r, Double(n))) / (1 - r) }
            var left = 1.01, right = 1.5, q = 0.0
            while right - left > 1e-6 {
                q = (left + right) / 2
                if progression(q, src / 2) > Double(dst / 2) { right = q } else { left = q }
            }
            var distances: [Double] = [], current = 1.0
            for i in 0..<(src / 2) {
                distances.append(current)
                current += pow(q, Double(i + 1))
            }
            return (distances.reversed().map { -$0 } + [0] + distances).map(Float.init)
        }
        let ys = positions(src.0, dst.0), xs = positions(src.1, dst.1)
        /// torch.bucketize(x, p) (first index with p[i] ≥ x), clamped, and the distances to both neighbours.
        func neighbours(_ x: Float, _ p: [Float]) -> (left: Int, right: Int, dl: Float, dr: Float) {
            let right = min(p.firstIndex { $0 >= x } ?? p.count, p.count - 1), left = max(right - 1, 0)
            var dl = max(x - p[left], 0), dr = max(p[right] - x, 0)
            if dl == 0 && dr == 0 { (dl, dr) = (1, 1) }
            return (left, right, dl, dr)
        }
        let ty = Float(dst.0 / 2), tx = Float(dst.1 / 2)
        var out = [Float](repeating: 0, count: (dst.0 * dst.1 + 3) * heads)
        for i in 0..<dst.0 {
            let y = neighbours(-ty + Float(i), ys)
            for j in 0..<dst.1 {
                let x = neighbours(-tx + Float(j), xs)
                for h in 0..<heads {
                    func z(_ r: Int, _ c: Int) -> Float { table[(r * src.1 + c) * heads + h] }
                    var numerator: Float = 0
                    numerator += z(y.left, x.left) * (y.dr * x.dr)
                    numerator += z(y.left, x.right) * (y.dr * x.dl)
                    numerator += z(y.right, x.left) * (y.dl * x.dr)
                    numerator += z(y.right, x.right) * (y.dl * x.dl)
                    out[(i * dst.1 + j) * heads + h] = numerator / ((y.dl + y.dr) * (x.dl + x.dr))
                }
            }
        }
        for e in 0..<(3 * heads) { out[dst.0 * dst.1 * heads + e] = table[src.0 * src.1 * heads + e] }
        return out
    }
}

/// timm's rotary embeddings (`layers/pos_embed_sincos.py`, timm 1.0.31) for a fixed grid: per patch token, the sine
/// and cosine of `head_dim/2` angles, each repeated for the two elements of its pair (timm's interleaved layout),
/// computed in float32 as timm does. `RotaryEmbeddingCat`: one table for every block and head, angles from fixed
/// frequency bands; `RotaryEmbeddingMixed`: one table per block and head, angles from learned frequencies.
struct RotaryTables {
    /// `[tables][patches][headDim]` each, tables = 1 or depth × heads.
    let sin: [Float]
    let cos: [Float]
    let headDim: Int
    let patches: Int
    /// Heads per block when every (block, head) has its own table, else nil.
    let headsPerTable: Int?

    init(architecture a: ViTArchitecture, rotary r: ViTArchitecture.Rotary, learned: [Float]?) {
        let hd = a.headDim, bands = hd / 4, pairs = hd / 2, patches = a.patchCount
        let grid = [a.gridHeight, a.gridWidth]
        func coordinate(_ i: Int, axis: Int) -> Float {
            var t = Float(i) + r.gridOffset
            if let reference = r.referenceGrid { t = t / Float(grid[axis]) * Float(reference[axis]) }
            return t
        }
        let tables = learned == nil ? 1 : a.depth * a.heads
        var sin = [Float](repeating: 0, count: tables * patches * hd), cos = sin
        func store(_ table: Int, _ p: Int, _ pair: Int, _ angle: Float) {
            let s = Float(Foundation.sin(Double(angle))), c = Float(Foundation.cos(Double(angle)))
            let e = (table * patches + p) * hd + 2 * pair
            (sin[e], sin[e + 1], cos[e], cos[e + 1]) = (s, s, c, c)
        }
        // bands_k = 1 / T^(k / bands) (freq_bands)
        let bandFrequencies = (0..<bands).map { k in 1 / Float(pow(Double(r.temperature), Double(Float(k) / Float(bands)))) }
        for y in 0..<a.gridHeight {
            for x in 0..<a.gridWidth {
                let p = y * a.gridWidth + x
                let first = r.rowFirst ? coordinate(y, axis: 0) : coordinate(x, axis: 1)
                let second = r.rowFirst ? coordinate(x, axis: 1) : coordinate(y, axis: 0)
                if let learned {
                    // get_mixed_freqs: angle = t₀·f₀ + t₁·f₁ per block and head (t₀ the column for 'xy').
                    for table in 0..<tables {
                        for j in 0..<pairs {
                            let f0 = learned[table * pairs + j], f1 = learned[(tables + table) * pairs + j]
                            store(table, p, j, first * f0 + second * f1)
                        }
                    }
                } else {
                    // Angles [axis 0 bands…, axis 1 bands…].
                    for (half, t) in [first, second].enumerated() {
                        for k in 0..<bands { store(0, p, half * bands + k, t * bandFrequencies[k]) }
                    }
                }
            }
        }
        (self.sin, self.cos, headDim, self.patches) = (sin, cos, hd, patches)
        headsPerTable = learned == nil ? nil : a.heads
    }

    /// Rotates the queries and keys of the patch tokens in place: `x·cos + rot(x)·sin` with
    /// `rot(x) = (−x₁, x₀, −x₃, x₂, …)` per head, for `images` images of `tokens` rows `[q | k | v]` (3·D wide).
    func rotate(
        _ qkv: UnsafeMutablePointer<Float>, images: Int, tokens: Int, prefix: Int, embedDim d: Int, layer: Int, threads: Int
    ) {
        let hd = headDim, heads = d / hd
        sin.withUnsafeBufferPointer { sin in
            cos.withUnsafeBufferPointer { cos in
                Compute.parallelRows(images * tokens, threads: threads) { range in
                    for r in range {
                        let t = r % tokens
                        guard t >= prefix else { continue }
                        let row = qkv + r * 3 * d
                        for head in 0..<(2 * heads) {  // every head of q, then of k
                            let table = headsPerTable.map { layer * $0 + head % heads } ?? 0
                            let offset = (table * patches + t - prefix) * hd
                            let s = sin.baseAddress! + offset, c = cos.baseAddress! + offset
                            let x = row + head * hd
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
