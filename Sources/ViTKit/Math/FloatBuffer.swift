/// A fixed-size, 64-byte-aligned buffer of Floats that owns its memory.
///
/// Weights and the forward pass's activations live in these so that GEMMs and kernels get stable, aligned
/// pointers without per-call `withUnsafeBufferPointer` nesting. The pointer is only used while the owning buffer
/// is alive (the model and its workspace hold them).
final class FloatBuffer: @unchecked Sendable {
    let count: Int
    let base: UnsafeMutablePointer<Float>

    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        base = raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
    }

    convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }

    var array: [Float] { Array(UnsafeBufferPointer(start: base, count: count)) }

    subscript(i: Int) -> Float {
        get { base[i] }
        set { base[i] = newValue }
    }
}
