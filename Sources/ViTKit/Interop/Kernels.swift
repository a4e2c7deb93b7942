import ViTKernels

/// The element-wise kernels of the forward pass (C, `Sources/ViTKernels`), over row-major matrices.
enum Kernels {
    /// `y = LayerNorm(x)` row by row. `x` and `y` may be the same buffer.
    static func layerNorm(
        _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, _ p: LayerNormParameters,
        dim: Int, eps: Float
    ) {
        vk_layer_norm(x, y, rows, dim, p.weight.base, p.bias.base, eps)
    }

    /// Row-wise softmax in place; rows start `ld` floats apart.
    static func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, ld: Int) {
        vk_softmax_rows(x, rows, columns, ld)
    }

    /// C = alpha · A · op(B) on the calling thread, with op(B) = Bᵀ when `transposeB`: the attention products, whose
    /// B changes with every call. Packs B (times alpha) into per-thread scratch and runs the linear layers'
    /// micro-kernel, so every element of C depends on its row of A, its column of op(B) and k alone. The corresponding
    /// C function is `vk_gemm()`.
    static func gemm(
        _ m: Int, _ n: Int, _ k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        vk_gemm(m, n, k, a, lda, b, transposeB ? 1 : ldb, transposeB ? ldb : 1, alpha, c, ldc)
    }

    /// `y[r] = act(gate)·value` for rows `[gate (hidden) | value (hidden)]` of `x`.
    static func glu(
        _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, rows: Int, hidden: Int, _ activation: ViTArchitecture.Activation
    ) {
        vk_glu(x, y, rows, hidden, activation.kernelCode)
    }

    /// The instruction-set path every kernel runs on: "avx512", "avx2" or "fallback" (`VITCLASSIFY_ISA` narrows it).
    static var instructionSet: String { String(cString: vk_instruction_set()) }

    /// The GEMM micro-kernel in use, e.g. "avx2 6x16".
    static var gemmKernel: String { String(cString: vk_gemm_kernel_name()) }

    /// The CPU's brand string.
    static var cpuModel: String { String(cString: vk_cpu_model()) }
}
