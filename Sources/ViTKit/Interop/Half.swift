/// IEEE 754 half precision to single, exactly, without `Float16` (missing on Intel Macs).
package enum Half {
    @inline(__always)
    package static func float(bits h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa · 2⁻²⁴, exact in Float.
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        case 0x1F:
            // Infinity, or NaN with its payload, made quiet as the hardware conversion (F16C) does.
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa != 0 ? 0x0040_0000 : 0) | mantissa << 13)
        default:
            return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | mantissa << 13)
        }
    }
}
