/// SplitMix64 (Steele, Lea & Flood 2014): a small deterministic generator for what must not change between runs or
/// machines — the faithfulness benchmark's random orders, the benchmarks' synthetic inputs, the tests' data.
package struct SplitMix64 {
    package var state: UInt64

    package init(state: UInt64) { self.state = state }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    package mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// `count` values uniform in [-scale, scale), 24 bits each.
    package mutating func floats(_ count: Int, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in (Float(next() >> 40) / Float(1 << 23) - 1) * scale }
    }
}
