import Foundation

/// Reads JPEG files into ``RGBImage``s with libjpeg-turbo (see `Sources/JPEGIO`), as Pillow's
/// `Image.open(path).convert("RGB")` does, then applies the EXIF orientation unless told not to.
package enum JPEGDecoder {
    /// Decodes the JPEG at `path` to 8-bit RGB.
    ///
    /// - Throws: ``ViTError`` naming the file: unreadable, not a readable JPEG (truncated, corrupt, unsupported),
    ///   too many pixels (checked against the frame header before decoding).
    package static func read(_ path: String, options: ImageReadOptions = ImageReadOptions()) throws -> RGBImage {
        try decode(try FileIO.read(path, limit: ImageDecoder.maxFileBytes), name: path, options: options)
    }

    /// Decodes JPEG bytes held in memory; `name` is used in error messages.
    package static func decode(_ data: Data, name: String, options: ImageReadOptions = ImageReadOptions()) throws -> RGBImage {
        let image = try JPEGCodec.decode(data, name: name, maxPixels: options.maxPixels).0
        guard options.applyExifOrientation, let orientation = OrientationMetadata.inJPEG(data) else { return image }
        return orientation.apply(to: image)
    }
}
