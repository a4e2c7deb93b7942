import Foundation

/// Colormaps for attention overlays (tables generated from matplotlib by `tools/make_colormaps.py`).
package enum Colormap: String, Sendable, CaseIterable {
    case inferno, viridis, jet, gray

    /// The colour of a value in [0, 1] (clamped), as matplotlib maps it.
    package func color(_ value: Float) -> (UInt8, UInt8, UInt8) {
        let i = Self.offset(value)
        let t = table
        return (t[i], t[i + 1], t[i + 2])
    }

    /// Where the colour of `value` starts in ``table``: `3·min(⌊256·v⌋, 255)` of `v` clamped to [0, 1], 0 for NaN
    /// and infinities.
    @inline(__always) static func offset(_ value: Float) -> Int {
        let v = value.isFinite ? min(max(value, 0), 1) : 0
        return min(Int(v * 256), 255) * 3
    }
}
