import Foundation

/// Reads PNG files into ``RGBImage``s with libpng (see `Sources/PNGIO`).
package enum PNGDecoder {
    /// PNG files larger than this are refused before they are read.
    package static let maxFileBytes = 1 << 30

    /// Decodes the PNG at `path` to 8-bit RGB: the stored samples, no gamma or colour-profile conversion, turned as
    /// an `eXIf` chunk's orientation says (as Pillow's `exif_transpose`) unless `options.applyExifOrientation` is false.
    ///
    /// - Throws: ``ViTError`` naming the file: unreadable, not a PNG, truncated, bad CRC, too many pixels, ...
    package static func read(_ path: String, options: ImageReadOptions = ImageReadOptions()) throws -> RGBImage {
        try decode(try FileIO.read(path, limit: maxFileBytes), name: path, options: options)
    }

    /// Decodes PNG bytes held in memory; `name` is used in error messages.
    package static func decode(_ data: Data, name: String, options: ImageReadOptions = ImageReadOptions()) throws -> RGBImage {
        let image = try PNGCodec.decode(data, name: name, options: options).0
        guard options.applyExifOrientation, let orientation = OrientationMetadata.inPNG(data) else { return image }
        return orientation.apply(to: image)
    }
}
