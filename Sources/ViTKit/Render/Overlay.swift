import Foundation

/// Draws an attention map over the original image.
///
/// The map lives on the model's patch grid, which covers the *cropped, resized* input. Each output pixel is taken
/// back through the same geometry as preprocessing (``Preprocessing/geometry(width:height:)``): original →
/// resized → crop → grid, then interpolated bilinearly between patch centres. Pixels the crop cut away get no
/// heat. The heat (map divided by its maximum) is coloured and alpha-blended over the image:
/// `out = (1 − α)·image + α·colormap(heat)`.
///
/// ## Size
///
/// Overlays keep the original size, except that images whose short side is under 224 px are enlarged by the
/// smallest integer factor that reaches 224 (28×28 → 224×224; 301×217 → 602×434). Every overlay fits a pixel
/// ``Budget`` (by default 8192 px a side and 2^24 = 16,777,216 pixels, ``Budget/standard``): the enlargement
/// factor is lowered to the largest integer that fits (1×4500 → 1×4500, not 224×1,008,000; 20×1000 → 160×8000),
/// and an original that is itself over the budget is reduced, by area averaging, by the one factor that makes it
/// fit, each side at least 1 px (20000×10000 → 5792×2896; 1×20000 → 1×8192). See ``size(width:height:budget:)``.
package enum Overlay {
    /// The most an overlay may hold: its longest side and its pixel count.
    ///
    /// The standard budget, 8192 px a side and 16 MP (4096²), keeps every overlay that the enlargement rule gives
    /// an image of up to 16 MP with sides up to 8192 px (a 12 MP photo is drawn at its own size), stays within the
    /// largest image many viewers and GPU textures take (8192 a side), and bounds the memory of one overlay
    /// (about 7 bytes a pixel while drawing: the heat as `Float` and the RGB samples) to about 120 MB.
    package struct Budget: Sendable, Equatable {
        /// The longest side, in pixels.
        package var maxSide: Int
        /// The pixel count (width × height).
        package var maxPixels: Int

        /// - Precondition: both are at least 1.
        package init(maxSide: Int, maxPixels: Int) {
            precondition(maxSide >= 1 && maxPixels >= 1, "an overlay budget must allow at least one pixel")
            self.maxSide = maxSide
            self.maxPixels = maxPixels
        }

        /// 8192 px a side, 16,777,216 (2^24) pixels.
        package static let standard = Budget(maxSide: 8192, maxPixels: 1 << 24)

        /// Whether a `width`×`height` image fits (sides of at least 1 px are assumed).
        package func allows(width: Int, height: Int) -> Bool {
            let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
            return width <= maxSide && height <= maxSide && !overflow && pixels <= maxPixels
        }

        /// The budget of each tile of a ``Overlay/grid(_:columns:gap:)`` of `count` tiles, such that the whole grid
        /// (tiles and gaps) fits this budget, as far as one pixel a tile allows.
        package func tiles(count: Int, columns: Int, gap: Int) -> Budget {
            // In Double, so that no count or gap can overflow (exact for any budget under 2^53).
            let c = Double(max(1, min(columns, count))), g = Double(max(0, gap))
            let r = (Double(max(1, count)) / c).rounded(.up)
            let side = max(1, min((Double(maxSide) - (c - 1) * g) / c, (Double(maxSide) - (r - 1) * g) / r).rounded(.down))
            // Grid area ≤ c·r·tilePixels + the gaps' share, bounded with tile sides ≤ side.
            let gaps = (c - 1) * g * r * side + (r - 1) * g * c * side + (c - 1) * (r - 1) * g * g
            let pixels = max(1, ((Double(maxPixels) - gaps) / (c * r)).rounded(.down))
            func int(_ x: Double) -> Int { x < 0x1p63 ? Int(x) : Int.max }
            return Budget(maxSide: int(side), maxPixels: int(pixels))
        }
    }

    /// The integer enlargement factor of an image's overlay.
    ///
    /// The smallest integer that brings the short side to 224 px (1 when it is already there), lowered to the largest
    /// factor whose overlay fits `budget`; 1 when none does (the overlay is then reduced: see
    /// ``size(width:height:budget:)``).
    package static func scale(width: Int, height: Int, budget: Budget = .standard) -> Int {
        guard width > 0 && height > 0 else { return 1 }
        let short = min(width, height), long = max(width, height)
        var k = min(short >= 224 ? 1 : (224 + short - 1) / short, budget.maxSide / long)
        while k > 1 && !budget.allows(width: width * k, height: height * k) { k -= 1 }
        return max(1, k)
    }

    /// The size of an image's overlay: the original enlarged by ``scale(width:height:budget:)`` when that fits
    /// `budget`; otherwise (the original itself is over the budget) reduced by the one factor that fits, each side
    /// at least 1 px. `(0, 0)` for an empty image.
    package static func size(width: Int, height: Int, budget: Budget = .standard) -> (width: Int, height: Int) {
        guard width > 0 && height > 0 else { return (0, 0) }
        let k = scale(width: width, height: height, budget: budget)
        if budget.allows(width: width, height: height) { return (width * k, height * k) }
        let factor = min(
            Double(budget.maxSide) / Double(max(width, height)),
            (Double(budget.maxPixels) / (Double(width) * Double(height))).squareRoot())
        // The epsilon absorbs rounding in `factor` (8192/10000·10000 must give 8192, not 8191).
        func side(_ n: Int) -> Int {
            let limit = min(n, budget.maxSide), scaled = (Double(n) * factor + 1e-9).rounded(.down)
            return max(1, scaled < Double(limit) ? Int(scaled) : limit)
        }
        var w = side(width), h = side(height)
        // Rounding up by the epsilon can leave a few pixels too many: trim the longer side.
        while !budget.allows(width: w, height: h) {
            if w >= h { w = max(1, min(w - 1, budget.maxPixels / h)) } else { h = max(1, min(h - 1, budget.maxPixels / w)) }
        }
        return (w, h)
    }

    /// The heat (0…1) of every pixel of an overlay of `size`, row-major.
    ///
    /// Output pixel `(x, y)` is taken at the original image's point `((x + ½)·W/w, (y + ½)·H/h)`, `W×H` being the
    /// image's size and `w×h` the overlay's.
    package static func heat(
        map: [Float], gridHeight: Int, gridWidth: Int, image: (width: Int, height: Int), preprocessing: Preprocessing,
        size: (width: Int, height: Int)
    ) -> [Float] {
        precondition(gridHeight >= 1 && gridWidth >= 1, "empty grid")
        precondition(map.count == gridHeight * gridWidth, "map size does not match the grid")
        let outW = max(0, size.width), outH = max(0, size.height)
        guard image.width > 0 && image.height > 0 && outW > 0 && outH > 0 else {
            return [Float](repeating: 0, count: outW * outH)
        }
        let g = preprocessing.geometry(width: image.width, height: image.height)
        let maximum = map.max() ?? 0
        let normalised = map.map { maximum > 0 ? max($0, 0) / maximum : 0 }
        let patchW = Double(g.outputWidth) / Double(gridWidth), patchH = Double(g.outputHeight) / Double(gridHeight)
        let sx = Double(g.resizedWidth) / Double(image.width), sy = Double(g.resizedHeight) / Double(image.height)
        // Per output column/row: the grid coordinate, or nil when outside the crop. For an overlay `k` times the
        // image, (i + 0.5)·n/(n·k) rounds exactly as (i + 0.5)/k.
        func axis(_ count: Int, _ original: Int, _ s: Double, _ offset: Int, _ inputSize: Int, _ patch: Double, _ cells: Int)
            -> [(Int, Int, Double)?]
        {
            (0..<count).map { i in
                let point = (Double(i) + 0.5) * Double(original) / Double(count)
                let input = point * s - Double(offset)
                guard input >= 0 && input < Double(inputSize) else { return nil }
                let position = min(max(input / patch - 0.5, 0), Double(cells - 1))
                let lower = Int(position.rounded(.down)), upper = min(lower + 1, cells - 1)
                return (lower, upper, position - Double(lower))
            }
        }
        let columns = axis(outW, image.width, sx, g.cropLeft, g.outputWidth, patchW, gridWidth)
        let rows = axis(outH, image.height, sy, g.cropTop, g.outputHeight, patchH, gridHeight)
        var heat = [Float](repeating: 0, count: outW * outH)
        heat.withUnsafeMutableBufferPointer { heat in
            normalised.withUnsafeBufferPointer { normalised in
                columns.withUnsafeBufferPointer { columns in
                    for (y, row) in rows.enumerated() {
                        guard let (y0, y1, ty) = row else { continue }
                        for (x, column) in columns.enumerated() {
                            guard let (x0, x1, tx) = column else { continue }
                            let top =
                                Double(normalised[y0 * gridWidth + x0]) * (1 - tx) + Double(normalised[y0 * gridWidth + x1]) * tx
                            let bottom =
                                Double(normalised[y1 * gridWidth + x0]) * (1 - tx) + Double(normalised[y1 * gridWidth + x1]) * tx
                            heat[y * outW + x] = Float(top * (1 - ty) + bottom * ty)
                        }
                    }
                }
            }
        }
        return heat
    }

    /// The heat of an overlay `scale` times the image (see ``heat(map:gridHeight:gridWidth:image:preprocessing:size:)``).
    package static func heat(
        map: [Float], gridHeight: Int, gridWidth: Int, image: (width: Int, height: Int), preprocessing: Preprocessing, scale: Int
    ) -> [Float] {
        heat(
            map: map, gridHeight: gridHeight, gridWidth: gridWidth, image: image, preprocessing: preprocessing,
            size: (image.width * scale, image.height * scale))
    }

    /// The overlay image: the original at ``size(width:height:budget:)`` blended with the coloured heat.
    ///
    /// An enlarged original is drawn with pixel replication; a reduced one by averaging the pixels each output pixel
    /// covers.
    /// - Parameter budget: the most the overlay may hold (``Budget/standard`` unless tiled, see
    ///   ``Budget/tiles(count:columns:gap:)``).
    package static func render(
        image: RGBImage, map: [Float], gridHeight: Int, gridWidth: Int, preprocessing: Preprocessing,
        colormap: Colormap = .inferno, alpha: Float = 0.5, budget: Budget = .standard
    ) -> RGBImage {
        let (outW, outH) = size(width: image.width, height: image.height, budget: budget)
        guard outW > 0 && outH > 0 else { return RGBImage(width: 0, height: 0, trustedPixels: []) }
        let heat = Self.heat(
            map: map, gridHeight: gridHeight, gridWidth: gridWidth, image: (image.width, image.height),
            preprocessing: preprocessing, size: (outW, outH))
        let base = resampled(image, width: outW, height: outH), table = colormap.table
        let pixels = [UInt8](unsafeUninitializedCapacity: outW * outH * 3) { out, count in
            heat.withUnsafeBufferPointer { heat in
                base.withUnsafeBufferPointer { base in
                    table.withUnsafeBufferPointer { table in
                        for i in 0..<heat.count {
                            let c = Colormap.offset(heat[i]), o = i * 3
                            out[o] = blend(base[o], table[c], alpha)
                            out[o + 1] = blend(base[o + 1], table[c + 1], alpha)
                            out[o + 2] = blend(base[o + 2], table[c + 2], alpha)
                        }
                    }
                }
            }
            count = outW * outH * 3
        }
        return RGBImage(width: outW, height: outH, trustedPixels: pixels)
    }

    /// For each of `to` output positions, the source positions (of `from`) it covers: `[⌊i·from/to⌋, ⌊(i+1)·from/to⌋)`,
    /// at least one. Enlarging by an integer `k` gives `i/k` alone (replication); reducing partitions the source.
    static func spans(from: Int, to: Int) -> [Range<Int>] {
        func scaled(_ i: Int) -> Int { to.dividingFullWidth(i.multipliedFullWidth(by: from)).quotient }
        return (0..<to).map { i in
            let lower = min(scaled(i), from - 1)
            return lower..<max(lower + 1, min(scaled(i + 1), from))
        }
    }

    /// `image` at `width`×`height` samples (3 a pixel): each output pixel is the rounded mean of the source pixels it
    /// covers (``spans(from:to:)``), the one source pixel when enlarging.
    static func resampled(_ image: RGBImage, width: Int, height: Int) -> [UInt8] {
        let columns = spans(from: image.width, to: width), rows = spans(from: image.height, to: height)
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let sourceWidth = image.width
        out.withUnsafeMutableBufferPointer { out in
            image.pixels.withUnsafeBufferPointer { source in
                if columns.allSatisfy({ $0.count == 1 }) && rows.allSatisfy({ $0.count == 1 }) {
                    for (y, row) in rows.enumerated() {
                        let line = row.lowerBound * sourceWidth * 3
                        for (x, column) in columns.enumerated() {
                            let s = line + column.lowerBound * 3, o = (y * width + x) * 3
                            out[o] = source[s]
                            out[o + 1] = source[s + 1]
                            out[o + 2] = source[s + 2]
                        }
                    }
                    return
                }
                // Sum the covered rows per source column, then the covered columns per output pixel.
                var sums = [Int](repeating: 0, count: sourceWidth * 3)
                sums.withUnsafeMutableBufferPointer { sums in
                    for (y, row) in rows.enumerated() {
                        for i in sums.indices { sums[i] = 0 }
                        for sourceRow in row {
                            let line = sourceRow * sourceWidth * 3
                            for i in sums.indices { sums[i] += Int(source[line + i]) }
                        }
                        for (x, column) in columns.enumerated() {
                            let count = row.count * column.count, o = (y * width + x) * 3
                            for c in 0..<3 {
                                var total = 0
                                for sourceColumn in column { total += sums[sourceColumn * 3 + c] }
                                out[o + c] = UInt8((total + count / 2) / count)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `round((1 − α)·base + α·color)`.
    @inline(__always) package static func blend(_ base: UInt8, _ color: UInt8, _ alpha: Float) -> UInt8 {
        UInt8(min(max(((1 - alpha) * Float(base) + alpha * Float(color)).rounded(), 0), 255))
    }

    /// Tiles equally sized images into a grid, row-major (first image top-left), `gap` white pixels apart.
    package static func grid(_ tiles: [RGBImage], columns: Int, gap: Int = 4) -> RGBImage {
        guard let first = tiles.first else { return RGBImage(width: 0, height: 0, trustedPixels: []) }
        let columns = max(1, min(columns, tiles.count)), rows = (tiles.count + columns - 1) / columns
        let width = columns * first.width + (columns - 1) * gap, height = rows * first.height + (rows - 1) * gap
        var pixels = [UInt8](repeating: 255, count: width * height * 3)
        for (i, tile) in tiles.enumerated() {
            let left = (i % columns) * (first.width + gap), top = (i / columns) * (first.height + gap)
            for y in 0..<tile.height {
                let source = y * tile.width * 3, target = ((top + y) * width + left) * 3
                pixels.replaceSubrange(target..<(target + tile.width * 3), with: tile.pixels[source..<(source + tile.width * 3)])
            }
        }
        return RGBImage(width: width, height: height, trustedPixels: pixels)
    }
}
