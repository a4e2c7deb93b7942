/// An 8-bit RGB image: `height` rows of `width` pixels, 3 interleaved samples each, top row first.
///
/// Read one from a PNG or JPEG file with ``init(contentsOf:options:)``, or wrap pixels you already have with
/// ``init(width:height:pixels:)``.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` samples: R, G, B of the top-left pixel, then the rest of the top row, then the next row.
    public let pixels: [UInt8]

    /// Wraps interleaved RGB samples.
    ///
    /// - Throws: ``ViTError/invalidArgument(_:)`` when `pixels.count` is not `width * height * 3`.
    public init(width: Int, height: Int, pixels: [UInt8]) throws(ViTError) {
        guard width >= 0, height >= 0, width.multipliedReportingOverflow(by: height).overflow == false,
            pixels.count == width * height * 3
        else {
            throw .invalidArgument("an RGB image of \(width)×\(height) pixels needs \(width)×\(height)×3 samples, not \(pixels.count)")
        }
        self.init(width: width, height: height, trustedPixels: pixels)
    }

    /// Reads a PNG or JPEG file (told by its signature, not its name), turned as its EXIF orientation says unless
    /// `options` say otherwise.
    ///
    /// - Throws: ``ViTError`` naming the file and the reason: unreadable, not an image, truncated, too large.
    public init(contentsOf path: String, options: ImageReadOptions = ImageReadOptions()) throws(ViTError) {
        do {
            self = try ImageDecoder.read(path, options: options)
        } catch let error as ViTError {
            throw error
        } catch {
            throw .fileUnreadable(path: path, reason: "\(error)")
        }
    }

    /// For samples whose count is right by construction (decoders, resampling, rendering).
    package init(width: Int, height: Int, trustedPixels pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3, "pixel count mismatch")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The three samples of the pixel at column `x`, row `y`.
    package subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

/// Options for reading an image.
public struct ImageReadOptions: Sendable, Equatable {
    /// Images with more pixels than this are refused before anything large is allocated.
    public var maxPixels: Int
    /// Composite transparent pixels over this colour instead of dropping the alpha channel (the reference pipelines
    /// drop it, as PIL's `convert("RGB")` does).
    public var background: (UInt8, UInt8, UInt8)?
    /// Turn the image as its EXIF orientation says (JPEG APP1 Exif, PNG eXIf; XMP `tiff:Orientation` without them),
    /// so that the model sees what any viewer shows: what Hugging Face's `load_image` does
    /// (`ImageOps.exif_transpose`). False reads the stored pixels as they are, as timm's `inference.py` does.
    public var applyExifOrientation: Bool

    /// 100 megapixels.
    public static let defaultMaxPixels = 100_000_000

    public init(
        maxPixels: Int = ImageReadOptions.defaultMaxPixels, background: (UInt8, UInt8, UInt8)? = nil,
        applyExifOrientation: Bool = true
    ) {
        self.maxPixels = maxPixels
        self.background = background
        self.applyExifOrientation = applyExifOrientation
    }

    public static func == (a: ImageReadOptions, b: ImageReadOptions) -> Bool {
        a.maxPixels == b.maxPixels && a.background.map { [$0.0, $0.1, $0.2] } == b.background.map { [$0.0, $0.1, $0.2] }
            && a.applyExifOrientation == b.applyExifOrientation
    }
}
