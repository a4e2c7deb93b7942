import Foundation

/// How an image becomes the model's input tensor: a resize rule, a crop, and normalisation.
///
/// Decoded from whichever configuration the checkpoint has (timm `pretrained_cfg`, Hugging Face
/// `preprocessor_config.json`) and applied by ``apply(to:)``. The same value maps attention maps back onto the
/// original image through ``geometry(width:height:)``.
package struct Preprocessing: Sendable, Equatable {
    package enum Resize: Sendable, Equatable {
        /// Scale so the shorter side is `size`, the longer side `Int(size · long / short)` (torchvision `Resize(int)`,
        /// timm's eval transform).
        case shorterSide(Int)
        /// Scale to exactly this size, ignoring the aspect ratio (Hugging Face processors, timm `squash`).
        case exact(height: Int, width: Int)
    }

    /// How a centre crop's offset is rounded when the margin is odd.
    package enum CropRounding: String, Sendable {
        /// `int(round((H - h) / 2))` with Python's round-half-to-even (torchvision `CenterCrop`).
        case roundHalfEven
        /// `(H - h) // 2` (Hugging Face `center_crop`).
        case floor
    }

    package var resize: Resize
    package var filter: ResampleFilter
    /// Centre crop to the model's input size after resizing; `nil` when the resize already gives the input size.
    package var crop: (height: Int, width: Int)?
    package var cropRounding: CropRounding
    package var rescale: Float
    package var mean: [Float]
    package var std: [Float]
    /// timm's `crop_pct`, when the resize was derived from it (kept so another input size can be derived alike).
    package var cropPct: Double?

    /// timm's eval transform (`timm.data.create_transform` with `is_training=False`).
    ///
    /// `center`: shorter side to `floor(S / crop_pct)`, then a centre crop S×S (torchvision rounding).
    /// `squash`: resize to `floor(S / crop_pct)` square, ignoring the aspect ratio, then the centre crop.
    package static func timm(
        inputHeight: Int, inputWidth: Int, cropPct: Double, squash: Bool, filter: ResampleFilter, mean: [Float], std: [Float]
    ) -> Preprocessing {
        let scaleHeight = Int((Double(inputHeight) / cropPct).rounded(.down))
        let scaleWidth = Int((Double(inputWidth) / cropPct).rounded(.down))
        let resize: Resize
        if squash {
            resize = .exact(height: scaleHeight, width: scaleWidth)
        } else {
            // timm uses torchvision Resize(int) (shorter side) when the scale size is square.
            resize = .shorterSide(scaleHeight)
        }
        var p = Preprocessing(
            resize: resize, filter: filter, crop: (inputHeight, inputWidth), cropRounding: .roundHalfEven,
            mean: mean, std: std)
        p.cropPct = cropPct
        return p
    }

    /// The same recipe for a square input of `size` (for `--image-size`).
    package func scaled(toInput size: Int) -> Preprocessing {
        var p = self
        if let cropPct {
            let squash: Bool
            if case .exact = resize { squash = true } else { squash = false }
            return .timm(
                inputHeight: size, inputWidth: size, cropPct: cropPct, squash: squash, filter: filter, mean: mean, std: std)
        }
        if let crop, case .exact(let h, let w) = resize {
            p.resize = .exact(
                height: Int((Double(size) * Double(h) / Double(crop.height)).rounded()),
                width: Int((Double(size) * Double(w) / Double(crop.width)).rounded()))
            p.crop = (size, size)
        } else {
            p.resize = .exact(height: size, width: size)
            p.crop = crop == nil ? nil : (size, size)
        }
        return p
    }

    /// A one-line description for `inspect`.
    package var summary: String {
        var parts: [String] = []
        switch resize {
        case .shorterSide(let s): parts.append("resize shorter side to \(s)")
        case .exact(let h, let w): parts.append("resize to \(w)×\(h)")
        }
        parts.append("\(filter.rawValue)" + (filter == .nearest ? "" : " (antialiased, as Pillow)"))
        if let crop { parts.append("centre crop \(crop.width)×\(crop.height)") }
        if let cropPct { parts.append("crop_pct \(cropPct)") }
        let format = { (v: [Float]) in "(" + v.map { String(format: "%.4g", $0) }.joined(separator: ", ") + ")" }
        parts.append("mean \(format(mean)) std \(format(std))")
        return parts.joined(separator: ", ")
    }

    package init(
        resize: Resize, filter: ResampleFilter, crop: (height: Int, width: Int)?, cropRounding: CropRounding,
        rescale: Float = 1 / 255, mean: [Float], std: [Float]
    ) {
        self.resize = resize
        self.filter = filter
        self.crop = crop
        self.cropRounding = cropRounding
        self.rescale = rescale
        self.mean = mean
        self.std = std
    }

    package static func == (a: Preprocessing, b: Preprocessing) -> Bool {
        a.resize == b.resize && a.filter == b.filter && a.crop?.height == b.crop?.height
            && a.crop?.width == b.crop?.width && a.cropRounding == b.cropRounding && a.rescale == b.rescale
            && a.mean == b.mean && a.std == b.std && a.cropPct == b.cropPct
    }

    /// Where the model's input comes from in an image of a given size.
    package struct Geometry: Sendable, Equatable {
        /// The size the image is resized to.
        package var resizedWidth: Int
        package var resizedHeight: Int
        /// The crop's top-left corner in the resized image (negative when the crop pads).
        package var cropLeft: Int
        package var cropTop: Int
        /// The model's input size.
        package var outputWidth: Int
        package var outputHeight: Int
    }

    package func geometry(width: Int, height: Int) -> Geometry {
        let (resizedWidth, resizedHeight): (Int, Int)
        switch resize {
        case .shorterSide(let size):
            if width <= height {
                resizedWidth = size
                resizedHeight = Int(Double(size) * Double(height) / Double(width))
            } else {
                resizedHeight = size
                resizedWidth = Int(Double(size) * Double(width) / Double(height))
            }
        case .exact(let h, let w):
            (resizedWidth, resizedHeight) = (w, h)
        }
        guard let crop else {
            return Geometry(
                resizedWidth: resizedWidth, resizedHeight: resizedHeight, cropLeft: 0, cropTop: 0,
                outputWidth: resizedWidth, outputHeight: resizedHeight)
        }
        func offset(_ outer: Int, _ inner: Int) -> Int {
            switch cropRounding {
            case .roundHalfEven: Int((Double(outer - inner) / 2).rounded(.toNearestOrEven))
            case .floor: Int((Double(outer - inner) / 2).rounded(.down))
            }
        }
        return Geometry(
            resizedWidth: resizedWidth, resizedHeight: resizedHeight,
            cropLeft: offset(resizedWidth, crop.width), cropTop: offset(resizedHeight, crop.height),
            outputWidth: crop.width, outputHeight: crop.height)
    }

    /// The model input for `image`: `[3][height][width]` floats (channel-major), normalised.
    package func apply(to image: RGBImage) -> [Float] {
        let g = geometry(width: image.width, height: image.height)
        let resized = Resample.resize(image, width: g.resizedWidth, height: g.resizedHeight, filter: filter)
        let plane = g.outputWidth * g.outputHeight
        var output = [Float](repeating: 0, count: 3 * plane)
        // Per channel, the value of a 0 sample (padding) and a lookup table from sample to normalised value,
        // computed as the references do in Float: torchvision's ToTensor divides by 255, then (x − mean) / std.
        let tables: [[Float]] = (0..<3).map { c in
            (0...255).map { v in
                let x = rescale == 1 / 255 ? Float(v) / 255 : Float(v) * rescale
                return (x - mean[c]) / std[c]
            }
        }
        for y in 0..<g.outputHeight {
            let sy = y + g.cropTop
            for x in 0..<g.outputWidth {
                let sx = x + g.cropLeft
                let inside = sy >= 0 && sy < resized.height && sx >= 0 && sx < resized.width
                let s = inside ? (sy * resized.width + sx) * 3 : 0
                for c in 0..<3 {
                    output[c * plane + y * g.outputWidth + x] = tables[c][inside ? Int(resized.pixels[s + c]) : 0]
                }
            }
        }
        return output
    }
}
