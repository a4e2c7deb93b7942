import Foundation

/// Separable resampling filters, as Pillow defines them (`libImaging/Resample.c`).
package enum ResampleFilter: String, Sendable, CaseIterable {
    case nearest, box, bilinear, hamming, bicubic, lanczos

    /// PIL's integer resample codes (`Image.Resampling`), as Hugging Face processors store them.
    package init?(pilCode: Int) {
        switch pilCode {
        case 0: self = .nearest
        case 1: self = .lanczos
        case 2: self = .bilinear
        case 3: self = .bicubic
        case 4: self = .box
        case 5: self = .hamming
        default: return nil
        }
    }

    var support: Double {
        switch self {
        case .nearest, .box: 0.5
        case .bilinear, .hamming: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .nearest, .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let x = abs(x)
            return x < 1 ? 1 - x : 0
        case .hamming:
            let x = abs(x)
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            let px = Double.pi * x
            return sin(px) / px * (0.54 + 0.46 * cos(px))
        case .bicubic:
            return Self.cubic(x, a: -0.5)
        case .lanczos:
            func sinc(_ x: Double) -> Double { x == 0 ? 1 : sin(Double.pi * x) / (Double.pi * x) }
            return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0
        }
    }

    /// Keys' cubic convolution kernel with parameter `a` (Pillow and antialiased PyTorch: −0.5; PyTorch: −0.75).
    static func cubic(_ x: Double, a: Double) -> Double {
        let x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }
}

/// The taps of a 1-D resampling: for each output index, the first input index and the normalised weights.
struct ResampleTaps {
    var first: [Int]
    var weights: [[Double]]

    /// Pillow's `precompute_coeffs` (also PyTorch's antialiased interpolation): the filter is stretched by the
    /// downscale factor, taps outside the input are dropped and the remaining weights renormalised.
    init(inputSize: Int, outputSize: Int, filter: ResampleFilter) {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = filter.support * filterScale
        first = []
        weights = []
        first.reserveCapacity(outputSize)
        weights.reserveCapacity(outputSize)
        for out in 0..<outputSize {
            let center = (Double(out) + 0.5) * scale
            let lower = max(Int(center - support + 0.5), 0)
            let upper = min(Int(center + support + 0.5), inputSize)
            var row = (lower..<max(upper, lower)).map { filter.weight((Double($0) - center + 0.5) / filterScale) }
            let total = row.reduce(0, +)
            if total != 0 { row = row.map { $0 / total } }
            first.append(lower)
            weights.append(row)
        }
    }

    /// PyTorch's non-antialiased bicubic (`align_corners=False`, a = −0.75, clamped borders), which Hugging Face
    /// uses to interpolate position embeddings. Returns taps that may repeat border indices.
    static func pytorchBicubic(inputSize: Int, outputSize: Int) -> [(indices: [Int], weights: [Double])] {
        let scale = Float(inputSize) / Float(outputSize)  // PyTorch computes the source index in float
        return (0..<outputSize).map { out in
            let source = scale * (Float(out) + 0.5) - 0.5
            let base = Int(source.rounded(.down))
            let t = Double(source - Float(base))
            let weights = [t + 1, t, 1 - t, 2 - t].map { ResampleFilter.cubic($0, a: -0.75) }
            let indices = (-1...2).map { min(max(base + $0, 0), inputSize - 1) }
            return (indices, weights)
        }
    }
}

enum Resample {
    /// Resizes an 8-bit RGB image exactly as Pillow's `Image.resize(size, filter)` does for an RGB image: a
    /// horizontal then a vertical pass, each in 22-bit fixed point with rounding and clipping to 0–255.
    static func resize(_ image: RGBImage, width: Int, height: Int, filter: ResampleFilter) -> RGBImage {
        if width == image.width && height == image.height { return image }
        if filter == .nearest { return nearest(image, width: width, height: height) }
        // Pillow 13 (`ImagingResampleInner`) runs the vertical pass first when the height shrinks by more than
        // twice as many pixels as the width; otherwise horizontal first. The intermediate is rounded to 8 bits, so
        // the order changes results by ±1 level: follow it exactly. (Pillow ≤ 12 always went horizontal first.)
        let verticalFirst = image.height - height > 0 && image.height - height > (image.width - width) * 2
        var current = image
        func horizontal() {
            if width != image.width {
                current = pass(
                    current, taps: ResampleTaps(inputSize: image.width, outputSize: width, filter: filter), horizontal: true)
            }
        }
        func vertical() {
            if height != image.height {
                current = pass(
                    current, taps: ResampleTaps(inputSize: image.height, outputSize: height, filter: filter), horizontal: false)
            }
        }
        if verticalFirst {
            vertical()
            horizontal()
        } else {
            horizontal()
            vertical()
        }
        return current
    }

    private static let precisionBits = 22

    /// Pillow's `normalize_coeffs_8bpc`: weights to fixed point, rounding half away from zero.
    private static func fixedPoint(_ weights: [Double]) -> [Int32] {
        let one = Double(1 << precisionBits)
        return weights.map { $0 < 0 ? Int32(-0.5 + $0 * one) : Int32(0.5 + $0 * one) }
    }

    private static func pass(_ image: RGBImage, taps: ResampleTaps, horizontal: Bool) -> RGBImage {
        let outWidth = horizontal ? taps.first.count : image.width
        let outHeight = horizontal ? image.height : taps.first.count
        let fixed = taps.weights.map(fixedPoint)
        let rounding = Int32(1 << (precisionBits - 1))
        let input = image.pixels
        let pixels = [UInt8](unsafeUninitializedCapacity: outWidth * outHeight * 3) { out, count in
            input.withUnsafeBufferPointer { src in
                for y in 0..<outHeight {
                    for x in 0..<outWidth {
                        let o = horizontal ? x : y
                        let k = fixed[o]
                        var s0 = rounding, s1 = rounding, s2 = rounding
                        for (j, w) in k.enumerated() {
                            let i =
                                horizontal
                                ? (y * image.width + taps.first[o] + j) * 3 : ((taps.first[o] + j) * image.width + x) * 3
                            s0 &+= Int32(src[i]) &* w
                            s1 &+= Int32(src[i + 1]) &* w
                            s2 &+= Int32(src[i + 2]) &* w
                        }
                        let d = (y * outWidth + x) * 3
                        out[d] = clip8(s0)
                        out[d + 1] = clip8(s1)
                        out[d + 2] = clip8(s2)
                    }
                }
            }
            count = outWidth * outHeight * 3
        }
        return RGBImage(width: outWidth, height: outHeight, trustedPixels: pixels)
    }

    @inline(__always) private static func clip8(_ value: Int32) -> UInt8 {
        let v = value >> Int32(precisionBits)
        return v < 0 ? 0 : v > 255 ? 255 : UInt8(v)
    }

    /// Pillow's nearest-neighbour resize (an affine transform sampling at pixel centres).
    private static func nearest(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        let xScale = Double(image.width) / Double(width), yScale = Double(image.height) / Double(height)
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let sy = min(Int((Double(y) + 0.5) * yScale), image.height - 1)
            for x in 0..<width {
                let sx = min(Int((Double(x) + 0.5) * xScale), image.width - 1)
                let s = (sy * image.width + sx) * 3, d = (y * width + x) * 3
                pixels[d] = image.pixels[s]
                pixels[d + 1] = image.pixels[s + 1]
                pixels[d + 2] = image.pixels[s + 2]
            }
        }
        return RGBImage(width: width, height: height, trustedPixels: pixels)
    }

    /// Resamples a float grid of `channels` interleaved values per cell (row-major `[height][width][channels]`).
    /// `taps` functions give the horizontal and vertical taps. Used for position embeddings.
    static func resizeGrid(
        _ values: [Float], height: Int, width: Int, channels: Int, newHeight: Int, newWidth: Int,
        taps: (Int, Int) -> [(indices: [Int], weights: [Double])]
    ) -> [Float] {
        let horizontal = taps(width, newWidth), vertical = taps(height, newHeight)
        // Horizontal pass in double, then vertical, as PyTorch's separable interpolation does in float accumulate.
        var temporary = [Double](repeating: 0, count: height * newWidth * channels)
        for y in 0..<height {
            for (x, tap) in horizontal.enumerated() {
                for (i, w) in zip(tap.indices, tap.weights) {
                    let s = (y * width + i) * channels, d = (y * newWidth + x) * channels
                    for c in 0..<channels { temporary[d + c] += w * Double(values[s + c]) }
                }
            }
        }
        var output = [Float](repeating: 0, count: newHeight * newWidth * channels)
        for (y, tap) in vertical.enumerated() {
            for x in 0..<newWidth {
                let d = (y * newWidth + x) * channels
                for c in 0..<channels {
                    var sum = 0.0
                    for (i, w) in zip(tap.indices, tap.weights) { sum += w * temporary[(i * newWidth + x) * channels + c] }
                    output[d + c] = Float(sum)
                }
            }
        }
        return output
    }
}

extension ResampleTaps {
    /// The same taps as index lists, for ``Resample/resizeGrid``.
    var asLists: [(indices: [Int], weights: [Double])] {
        zip(first, weights).map { first, weights in (Array(first..<(first + weights.count)), weights) }
    }
}
