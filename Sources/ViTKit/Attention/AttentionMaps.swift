

/// The attention of one image: every layer's and head's softmax probabilities, and the maps derived from them.
///
/// Maps live on the patch grid (`gridHeight × gridWidth`, row-major); prefix tokens (class, distillation,
/// registers) are never part of a map. For models without a class token (average pooling), the "class-token row"
/// is the mean over the patch queries.
public struct AttentionMaps: Sendable {
    public let layers: Int
    public let heads: Int
    public let tokens: Int
    public let prefixTokens: Int
    public let gridHeight: Int
    public let gridWidth: Int
    public let hasClassToken: Bool
    /// `[layer][head][query · tokens + key]`.
    public let probabilities: [[[Float]]]

    package init(probabilities: [[[Float]]], architecture a: ViTArchitecture) {
        self.probabilities = probabilities
        layers = a.depth
        heads = a.heads
        tokens = a.tokens
        prefixTokens = a.prefixTokens
        gridHeight = a.gridHeight
        gridWidth = a.gridWidth
        hasClassToken = a.classToken
    }

    /// The class token's attention over all tokens (prefix tokens first) for one layer and head: the row of query 0,
    /// or without a class token the mean of the patch queries' rows. Sums to 1.
    package func queryRow(layer: Int, head: Int) -> [Float] {
        let p = probabilities[layer][head], n = tokens
        if hasClassToken { return Array(p[0..<n]) }
        var row = [Double](repeating: 0, count: n)
        for q in prefixTokens..<n { for k in 0..<n { row[k] += Double(p[q * n + k]) } }
        return row.map { Float($0 / Double(n - prefixTokens)) }
    }

    /// `[layer][head][token]`: for every layer and head, the class token's attention over all tokens (prefix tokens
    /// first), the row of query 0; without a class token, the mean of the patch queries' rows. Each sums to 1.
    public var classRows: [[[Float]]] {
        (0..<layers).map { l in (0..<heads).map { h in queryRow(layer: l, head: h) } }
    }

    /// Throws unless `layer` is one of the model's layers.
    package func checkLayer(_ layer: Int) throws {
        guard layer >= 0 && layer < layers else {
            throw ViTError.invalidArgument("layer \(layer) does not exist (the model has layers 0-\(layers - 1))")
        }
    }

    /// One layer's class-token attention over the patches, heads combined by `selection` (not normalised).
    public func layerMap(_ layer: Int, heads selection: HeadSelection) throws -> [Float] {
        try checkLayer(layer)
        let rows = (0..<heads).map { Array(queryRow(layer: layer, head: $0)[prefixTokens...]) }
        switch selection {
        case .head(let h):
            guard h < heads else {
                throw ViTError.invalidArgument("head \(h) does not exist (the model has heads 0-\(heads - 1))")
            }
            return rows[h]
        case .mean:
            return (0..<rows[0].count).map { i in rows.map { Double($0[i]) }.reduce(0, +) / Double(heads) }.map(Float.init)
        case .max: return (0..<rows[0].count).map { i in rows.map { $0[i] }.max()! }
        case .min: return (0..<rows[0].count).map { i in rows.map { $0[i] }.min()! }
        }
    }

    /// Attention rollout (Abnar & Zuidema 2020) over the patch grid, divided by its maximum.
    ///
    /// Per layer: fuse the heads (`fusion`), optionally zero the smallest `discardRatio` fraction of all entries
    /// (never entry [0, 0]), add the identity for the residual connection, re-normalise each *row* to sum 1, and
    /// accumulate `result = A · result`. The map is the class-token row of `result` over the patch columns.
    public func rollout(fusion: HeadSelection = .mean, discardRatio: Double = 0) throws -> [Float] {
        let n = tokens, result = try rolloutMatrix(fusion: fusion, discardRatio: discardRatio)
        var map: [Double]
        if hasClassToken {
            map = Array(result[prefixTokens..<n])
        } else {
            map = [Double](repeating: 0, count: n - prefixTokens)
            for q in prefixTokens..<n { for j in prefixTokens..<n { map[j - prefixTokens] += result[q * n + j] } }
            map = map.map { $0 / Double(n - prefixTokens) }
        }
        let maximum = map.max() ?? 1
        return map.map { Float(maximum > 0 ? $0 / maximum : 0) }
    }

    /// The whole rollout product `[query · tokens + key]` (every token's row, see ``rollout(fusion:discardRatio:)``),
    /// for views that follow any query token (`explore`).
    package func rolloutMatrix(fusion: HeadSelection = .mean, discardRatio: Double = 0) throws -> [Double] {
        guard discardRatio >= 0 && discardRatio < 1 else { throw ViTError.invalidArgument("the discard ratio must be in [0, 1), not \(discardRatio)") }
        if case .head = fusion { throw ViTError.invalidArgument("rollout fuses heads with mean, max or min") }
        let n = tokens
        var result = [Double](repeating: 0, count: n * n)
        for i in 0..<n { result[i * n + i] = 1 }
        for layer in 0..<layers {
            var a = [Double](repeating: 0, count: n * n)
            let heads = probabilities[layer]
            for i in 0..<(n * n) {
                switch fusion {
                case .mean: a[i] = heads.reduce(0) { $0 + Double($1[i]) } / Double(heads.count)
                case .max: a[i] = Double(heads.map { $0[i] }.max()!)
                default: a[i] = Double(heads.map { $0[i] }.min()!)
                }
            }
            if discardRatio > 0 {
                let k = Int(Double(n * n) * discardRatio)
                // The k smallest entries (stable order), except entry 0 (class token to itself).
                let order = a.indices.sorted { a[$0] != a[$1] ? a[$0] < a[$1] : $0 < $1 }
                for index in order.prefix(k) where index != 0 { a[index] = 0 }
            }
            for row in 0..<n {
                a[row * n + row] += 1
                let sum = a[(row * n)..<((row + 1) * n)].reduce(0, +)
                for c in 0..<n { a[row * n + c] /= sum }
            }
            var next = [Double](repeating: 0, count: n * n)
            for i in 0..<n {
                for k in 0..<n where a[i * n + k] != 0 {
                    let w = a[i * n + k]
                    for j in 0..<n { next[i * n + j] += w * result[k * n + j] }
                }
            }
            result = next
        }
        return result
    }

    /// The map a user asked for: rollout (heads fused by `fusion`), or one layer's heads combined by `heads`.
    public func map(
        _ kind: AttentionMapKind, heads selection: HeadSelection = .mean, fusion: HeadSelection = .mean, discardRatio: Double = 0
    ) throws -> [Float] {
        switch kind {
        case .rollout: try rollout(fusion: fusion, discardRatio: discardRatio)
        case .last: try layerMap(layers - 1, heads: selection)
        case .layer(let l): try layerMap(l, heads: selection)
        }
    }
}
