import Foundation

/// The explanation maps, computed from the attention probabilities and the gradients of one target logit.
///
/// "The class token's row" (transformer attribution, gradient rollout) is row 0 — the class token, also for distilled
/// DeiT, whose distillation token (row 1) is skipped with the other prefix tokens; Chefer et al.'s code takes
/// `R[0, 1:]`, which for a distilled model would put the distillation token's column in the map. A model without a
/// class token (average pooling) has no such row: the map is the mean over the patch queries' rows, as for rollout.
enum Explanations {
    /// The row of an `n × n` matrix that stands for the class token, over the patch columns.
    static func classRow(_ r: [Double], tokens n: Int, prefix: Int, hasClassToken: Bool) -> [Double] {
        if hasClassToken { return Array(r[prefix..<n]) }
        var row = [Double](repeating: 0, count: n - prefix)
        for q in prefix..<n { for j in prefix..<n { row[j - prefix] += r[q * n + j] } }
        return row.map { $0 / Double(n - prefix) }
    }

    /// Per head of one layer, the gradient-weighted attention `(∇A_h ⊙ A_h)⁺` (what transformer attribution and
    /// gradient rollout average over the heads), as the class token's row over the patches (the mean row without one).
    static func gradientWeightedHeads(
        attention: [[[Float]]], gradients: [Float], layer: Int, tokens n: Int, prefix: Int, hasClassToken: Bool
    ) -> [[Float]] {
        let probabilities = attention[layer], heads = probabilities.count
        return (0..<heads).map { h in
            let base = (layer * heads + h) * n * n, p = probabilities[h]
            let cam = (0..<(n * n)).map { max(Double(gradients[base + $0]) * Double(p[$0]), 0) }
            return classRow(cam, tokens: n, prefix: prefix, hasClassToken: hasClassToken).map(Float.init)
        }
    }

    /// `a·result` for `n × n` row-major matrices (double precision; the corresponding C function is `cblas_dgemm()`).
    static func multiply(_ a: [Double], _ result: [Double], _ n: Int) -> [Double] {
        [Double](unsafeUninitializedCapacity: n * n) { out, count in
            a.withUnsafeBufferPointer { a in
                result.withUnsafeBufferPointer { r in
                    BLAS.gemm(n, n, n, a: a.baseAddress!, lda: n, b: r.baseAddress!, ldb: n, c: out.baseAddress!, ldc: n)
                }
            }
            count = n * n
        }
    }

    /// Chefer et al. 2021 (ICCV), Transformer-MM-Explainability's ViT notebook (`avg_heads`,
    /// `apply_self_attention_rules`, `generate_relevance`): `R = I`; per block, in forward order,
    /// `Ā = mean_h(clamp(∇A ⊙ A, min: 0))` and `R ← R + Ā·R`; the class token's row over the patches (raw).
    ///
    /// - Parameters:
    ///   - attention: `[layer][head][query · tokens + key]` probabilities; `gradients`: ∂logit/∂A, `[layer][head][n][n]` flat.
    static func transformerAttribution(
        attention: [[[Float]]], gradients: [Float], tokens n: Int, prefix: Int, hasClassToken: Bool
    ) -> [Float] {
        var r = [Double](repeating: 0, count: n * n)
        for i in 0..<n { r[i * n + i] = 1 }
        let heads = attention.first?.count ?? 0
        for (layer, probabilities) in attention.enumerated() {
            var cam = [Double](repeating: 0, count: n * n)
            for h in 0..<heads {
                let base = (layer * heads + h) * n * n, p = probabilities[h]
                for i in 0..<(n * n) { cam[i] += max(Double(gradients[base + i]) * Double(p[i]), 0) }
            }
            for i in 0..<(n * n) { cam[i] /= Double(heads) }
            let added = multiply(cam, r, n)
            for i in 0..<(n * n) { r[i] += added[i] }
        }
        return classRow(r, tokens: n, prefix: prefix, hasClassToken: hasClassToken).map(Float.init)
    }

    /// Gradient attention rollout as jacobgil/vit-explain's `vit_grad_rollout.py` describes it: per layer, in forward
    /// order, `Ā = mean_h(A ⊙ ∇A)` with negatives set to 0, the smallest `discardRatio` fraction of Ā's entries zeroed
    /// (never entry [0, 0]), `(Ā + I)/2` with each *row* re-normalised to sum 1, `result ← Ā·result`; the class token's
    /// row over the patches, divided by its maximum.
    ///
    /// vit-explain's own code differs (its defects, not copied): its hook lands on the softmax's input, so it weights
    /// by the gradient of the scores, not of the probabilities; it pairs layer i's attention with layer L−1−i's
    /// gradient (gradients arrive in backward order); `a / a.sum(dim=-1)` without `keepdim` divides columns, not rows;
    /// the class token's own entry may be discarded; `mask = result[0, 0, 1:]` assumes exactly one prefix token.
    static func gradientRollout(
        attention: [[[Float]]], gradients: [Float], tokens n: Int, prefix: Int, hasClassToken: Bool, discardRatio: Double
    ) -> [Float] {
        var result = [Double](repeating: 0, count: n * n)
        for i in 0..<n { result[i * n + i] = 1 }
        let heads = attention.first?.count ?? 0
        for (layer, probabilities) in attention.enumerated() {
            var a = [Double](repeating: 0, count: n * n)
            for h in 0..<heads {
                let base = (layer * heads + h) * n * n, p = probabilities[h]
                for i in 0..<(n * n) { a[i] += Double(gradients[base + i]) * Double(p[i]) }
            }
            for i in 0..<(n * n) { a[i] = max(a[i] / Double(heads), 0) }
            if discardRatio > 0 {
                let k = Int(Double(n * n) * discardRatio)
                let order = a.indices.sorted { a[$0] != a[$1] ? a[$0] < a[$1] : $0 < $1 }
                for index in order.prefix(k) where index != 0 { a[index] = 0 }
            }
            for row in 0..<n {
                a[row * n + row] += 1
                for c in 0..<n { a[row * n + c] /= 2 }
                let sum = a[(row * n)..<((row + 1) * n)].reduce(0, +)
                for c in 0..<n { a[row * n + c] /= sum }
            }
            result = multiply(a, result, n)
        }
        let map = classRow(result, tokens: n, prefix: prefix, hasClassToken: hasClassToken)
        let maximum = map.max() ?? 0
        return map.map { Float(maximum > 0 ? $0 / maximum : 0) }
    }

    /// Grad-CAM (pytorch-grad-cam's `GradCAM` with a ViT `reshape_transform`): over the patch tokens of `activations`
    /// (`[tokens][D]`), weights `α_c` = mean over the patches of `gradients[·][c]`, map = ReLU(Σ_c α_c·activations[·][c]).
    static func gradCAM(activations: ArraySlice<Float>, gradients: ArraySlice<Float>, tokens n: Int, prefix: Int, dim d: Int) -> [Float] {
        let x = Array(activations), g = Array(gradients), patches = n - prefix
        var alpha = [Double](repeating: 0, count: d)
        for t in prefix..<n { for c in 0..<d { alpha[c] += Double(g[t * d + c]) } }
        for c in 0..<d { alpha[c] /= Double(patches) }
        return (prefix..<n).map { t in
            var s = 0.0
            for c in 0..<d { s += alpha[c] * Double(x[t * d + c]) }
            return Float(max(s, 0))
        }
    }

    /// Gradient × input per pixel, summed over the channels (`[channels][height][width]` in, `[height][width]` out).
    static func inputGradient(gradients: [Float], input: [Float], channels: Int, plane: Int) -> [Float] {
        (0..<plane).map { i in
            var s = 0.0
            for c in 0..<channels { s += Double(gradients[c * plane + i]) * Double(input[c * plane + i]) }
            return Float(s)
        }
    }
}
