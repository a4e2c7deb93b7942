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

    /// `x[r] += bias` for each row; rows start `ld` floats apart.
    static func addBias(_ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, ld: Int, bias: FloatBuffer) {
        vk_add_bias(x, rows, columns, ld, bias.base)
    }

    /// `x = activation(x + bias)` for a dense `[rows][columns]` matrix.
    static func addBiasActivation(
        _ x: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: FloatBuffer, _ activation: ViTArchitecture.Activation
    ) {
        switch activation {
        case .gelu: vk_add_bias_gelu(x, rows, columns, bias.base)
        case .geluTanh: vk_add_bias_gelu_tanh(x, rows, columns, bias.base)
        }
    }

    static var instructionSet: String { String(cString: vk_instruction_set()) }
}
