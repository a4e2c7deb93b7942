import Foundation

/// Colormaps for attention overlays (tables generated from matplotlib by `tools/make_colormaps.py`).
public enum Colormap: String, Sendable, CaseIterable {
    case inferno, viridis, jet, gray

    /// The colour of a value in [0, 1] (clamped), as matplotlib maps it.
    public func color(_ value: Float) -> (UInt8, UInt8, UInt8) {
        let v = value.isFinite ? min(max(value, 0), 1) : 0
        let i = min(Int(v * 256), 255) * 3
        let t = table
        return (t[i], t[i + 1], t[i + 2])
    }
}

/// Draws an attention map over the original image.
///
/// The map lives on the model's patch grid, which covers the *cropped, resized* input. Each output pixel is taken
/// back through the same geometry as preprocessing (``Preprocessing/geometry(width:height:)``): original →
/// resized → crop → grid, then interpolated bilinearly between patch centres. Pixels the crop cut away get no
/// heat. The heat (map divided by its maximum) is coloured and alpha-blended over the image:
/// `out = (1 − α)·image + α·colormap(heat)`.
public enum Overlay {
    /// Overlays keep the original size, except that images whose short side is under 224 px are enlarged by the
    /// smallest integer factor that reaches 224 (28×28 → 224×224; 301×217 → 602×434).
    public static func scale(width: Int, height: Int) -> Int {
        let short = max(1, min(width, height))
        return short >= 224 ? 1 : (224 + short - 1) / short
    }

    /// The heat (0…1) of every pixel of the overlay, row-major, `width·scale × height·scale`.
    public static func heat(
        map: [Float], gridHeight: Int, gridWidth: Int, image: (width: Int, height: Int), preprocessing: Preprocessing, scale: Int
    ) -> [Float] {
        precondition(map.count == gridHeight * gridWidth, "map size does not match the grid")
        let g = preprocessing.geometry(width: image.width, height: image.height)
        let maximum = map.max() ?? 0
        let normalised = map.map { maximum > 0 ? max($0, 0) / maximum : 0 }
        let patchW = Double(g.outputWidth) / Double(gridWidth), patchH = Double(g.outputHeight) / Double(gridHeight)
        let outW = image.width * scale, outH = image.height * scale
        let sx = Double(g.resizedWidth) / Double(image.width), sy = Double(g.resizedHeight) / Double(image.height)
        // Per output column/row: the grid coordinate, or nil when outside the crop.
        func axis(_ count: Int, _ s: Double, _ offset: Int, _ inputSize: Int, _ patch: Double, _ cells: Int) -> [(
            Int, Int, Double
        )?] {
            (0..<count).map { i in
                let original = (Double(i) + 0.5) / Double(scale)
                let input = original * s - Double(offset)
                guard input >= 0 && input < Double(inputSize) else { return nil }
                let position = min(max(input / patch - 0.5, 0), Double(cells - 1))
                let lower = Int(position.rounded(.down)), upper = min(lower + 1, cells - 1)
                return (lower, upper, position - Double(lower))
            }
        }
        let columns = axis(outW, sx, g.cropLeft, g.outputWidth, patchW, gridWidth)
        let rows = axis(outH, sy, g.cropTop, g.outputHeight, patchH, gridHeight)
        var heat = [Float](repeating: 0, count: outW * outH)
        for (y, row) in rows.enumerated() {
            guard let (y0, y1, ty) = row else { continue }
            for (x, column) in columns.enumerated() {
                guard let (x0, x1, tx) = column else { continue }
                let top = Double(normalised[y0 * gridWidth + x0]) * (1 - tx) + Double(normalised[y0 * gridWidth + x1]) * tx
                let bottom = Double(normalised[y1 * gridWidth + x0]) * (1 - tx) + Double(normalised[y1 * gridWidth + x1]) * tx
                heat[y * outW + x] = Float(top * (1 - ty) + bottom * ty)
            }
        }
        return heat
    }

    /// The overlay image: the original (enlarged by ``scale(width:height:)`` with pixel replication) blended with
    /// the coloured heat.
    public static func render(
        image: RGBImage, map: [Float], gridHeight: Int, gridWidth: Int, preprocessing: Preprocessing,
        colormap: Colormap = .inferno, alpha: Float = 0.5
    ) -> RGBImage {
        let k = scale(width: image.width, height: image.height)
        let heat = Self.heat(
            map: map, gridHeight: gridHeight, gridWidth: gridWidth, image: (image.width, image.height),
            preprocessing: preprocessing, scale: k)
        let outW = image.width * k, outH = image.height * k
        var pixels = [UInt8](repeating: 0, count: outW * outH * 3)
        for y in 0..<outH {
            for x in 0..<outW {
                let source = image[x / k, y / k]
                let color = colormap.color(heat[y * outW + x])
                let o = (y * outW + x) * 3
                pixels[o] = blend(source.r, color.0, alpha)
                pixels[o + 1] = blend(source.g, color.1, alpha)
                pixels[o + 2] = blend(source.b, color.2, alpha)
            }
        }
        return RGBImage(width: outW, height: outH, pixels: pixels)
    }

    /// `round((1 − α)·base + α·color)`.
    @inline(__always) public static func blend(_ base: UInt8, _ color: UInt8, _ alpha: Float) -> UInt8 {
        UInt8(min(max(((1 - alpha) * Float(base) + alpha * Float(color)).rounded(), 0), 255))
    }

    /// Tiles equally sized images into a grid, row-major (first image top-left), `gap` white pixels apart.
    public static func grid(_ tiles: [RGBImage], columns: Int, gap: Int = 4) -> RGBImage {
        guard let first = tiles.first else { return RGBImage(width: 0, height: 0, pixels: []) }
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
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
