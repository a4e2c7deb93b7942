import ViTKernels

/// The arithmetic of the linear layers of the transformer blocks (and, for BF16, the patch embedding).
///
/// - ``fp32``: the packed fp32 GEMM (the default; every result as before this option existed).
/// - ``bf16``: weights rounded to bfloat16 once at load (a BF16 checkpoint's tensors are packed as they are),
///   activations rounded to bfloat16 (nearest even) as they are packed, fp32 accumulation. Patch embedding, qkv,
///   proj, fc1, fc2 in BF16; the head in fp32.
/// - ``int8``: per-output-channel symmetric INT8 weights, per-row (per-token) asymmetric UINT8 activations quantised
///   at each call, exact INT32 products, dequantisation, bias, activation and residual fused into the output pass.
///   qkv, proj, fc1 and fc2 of every block in INT8; patch embedding and head in fp32 (see BENCHMARKS.md,
///   "Reduced precision", for the measurements behind that choice).
///
/// LayerNorm, softmax, the attention products (Q·Kᵀ, P·V), GELU and the residual stream stay fp32 in every precision.
/// For a given precision the results are the same bits for any batch size and thread count.
public enum Precision: String, Sendable, CaseIterable, Codable {
    case fp32, bf16, int8

    /// The micro-kernel this CPU uses for the precision's GEMMs at the current instruction-set level, e.g.
    /// `avx512 14x32`, `avx512-bf16 14x32`, `amx-int8 32x32`.
    package var gemmKernel: String {
        switch self {
        case .fp32: String(cString: vk_gemm_kernel_name())
        case .bf16: String(cString: vk_gemm_bf16_kernel_name())
        case .int8: String(cString: vk_gemm_q8_kernel_name())
        }
    }
}

/// How one linear layer's weight is stored: the precision, and (for tests and benchmarks) a named reduced-precision
/// micro-kernel instead of the default one (`vk_q8_kernel_available`, `vk_bf16_kernel_available`).
struct WeightFormat: Sendable {
    var precision: Precision = .fp32
    var kernel: String? = nil

    static let fp32 = WeightFormat()

    /// The format of the patch embedding under the model's precision: BF16 follows it, INT8 keeps it fp32.
    var patchEmbedding: WeightFormat { precision == .int8 ? .fp32 : self }
}

extension VisionTransformer {
    /// The precision of the blocks' linear layers.
    package var precision: Precision { weights.blocks.first?.qkv.precision ?? .fp32 }

    /// The micro-kernel of the blocks' linear layers, e.g. `amx-int8 32x32` (fp32: the packed GEMM's).
    package var linearKernel: String { weights.blocks.first?.qkv.kernelName ?? Precision.fp32.gemmKernel }

    /// INT8 in the reduced range (7-bit weights and activations): the vpmaddubsw kernel of AVX2 CPUs without VNNI
    /// (vit_qgemm.h).
    package var reducedRange: Bool { precision == .int8 && vk_q8_kernel_weight_max(linearKernel) == 63 }

    /// Bytes held by every packed linear layer's weight (the bulk of a loaded model).
    package var packedWeightBytes: Int {
        var layers: [Linear] = [weights.patchEmbedding, weights.head]
        if let h = weights.distillationHead { layers.append(h) }
        for b in weights.blocks { layers += [b.qkv, b.proj, b.fc1, b.fc2] }
        if let p = weights.attentionPool { layers += [p.kv, p.proj, p.fc1, p.fc2] }
        return layers.map(\.packedBytes).reduce(0, +)
    }
}
