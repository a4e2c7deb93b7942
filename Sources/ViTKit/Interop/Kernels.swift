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
