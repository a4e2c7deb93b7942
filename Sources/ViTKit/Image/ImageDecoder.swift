import Foundation

/// The image formats ViTKit reads.
package enum ImageFormat: String, Sendable, CaseIterable {
    case png = "PNG"
    case jpeg = "JPEG"

    /// The format a file's first bytes announce (the file name plays no part).
    ///
    /// PNG: starts with `\x89PNG` (the rest of the 8-byte signature is checked by the PNG decoder, which explains a
    /// damaged one). JPEG: starts with the SOI marker `FF D8`.
    package static func detect(_ data: Data) -> ImageFormat? {
        let head = [UInt8](data.prefix(4))
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return .png }
        if head.starts(with: [0xFF, 0xD8]) { return .jpeg }
        return nil
    }

    /// A name for the formats ViTKit does not read, from their signatures, for error messages.
    static func unsupportedName(_ data: Data) -> String? {
        let head = [UInt8](data.prefix(12))
        func ascii(_ text: String, at offset: Int = 0) -> Bool {
            head.count >= offset + text.utf8.count && head[offset..<(offset + text.utf8.count)].elementsEqual(text.utf8)
        }
        if ascii("GIF87a") || ascii("GIF89a") { return "GIF" }
        if ascii("RIFF") && ascii("WEBP", at: 8) { return "WebP" }
        if ascii("BM") { return "BMP" }
        if head.starts(with: [0x49, 0x49, 0x2A, 0x00]) || head.starts(with: [0x4D, 0x4D, 0x00, 0x2A]) { return "TIFF" }
        if ascii("ftyp", at: 4) {
            if ascii("avif", at: 8) || ascii("avis", at: 8) { return "AVIF" }
            if ascii("heic", at: 8) || ascii("heix", at: 8) || ascii("mif1", at: 8) { return "HEIF" }
        }
        if head.starts(with: [0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20]) || head.starts(with: [0xFF, 0x4F, 0xFF, 0x51]) {
            return "JPEG 2000"
        }
        return nil
    }
}

/// Reads PNG and JPEG files into ``RGBImage``s, choosing the decoder by the file's signature, not its name.
///
/// The one entry point for images: the CLI and the library read every input through it. The image comes back as a
/// viewer shows it (EXIF orientation applied) unless ``ImageReadOptions/applyExifOrientation`` is false.
///
/// ### See Also
/// - ``PNGDecoder``, ``JPEGDecoder``: one format only.
package enum ImageDecoder {
    /// Image files larger than this are refused before they are read.
    package static let maxFileBytes = 1 << 30

    /// Decodes the PNG or JPEG at `path` to 8-bit RGB.
    ///
    /// - Throws: ``ViTError`` naming the file: unreadable, unknown format (the message lists the supported ones),
    ///   not a readable PNG/JPEG (truncated, corrupt, ...), too many pixels.
    package static func read(_ path: String, options: ImageReadOptions = ImageReadOptions()) throws -> RGBImage {
        try decode(try FileIO.read(path, limit: maxFileBytes), name: path, options: options)
    }

    /// Decodes PNG or JPEG bytes held in memory; `name` is used in error messages.
    package static func decode(_ data: Data, name: String, options: ImageReadOptions = ImageReadOptions()) throws -> RGBImage {
        switch ImageFormat.detect(data) {
        case .png: return try PNGDecoder.decode(data, name: name, options: options)
        case .jpeg: return try JPEGDecoder.decode(data, name: name, options: options)
        case nil:
            guard !data.isEmpty else { throw ViTError.unknownImageFormat(path: name, reason: "file is empty") }
            let looksLike = ImageFormat.unsupportedName(data).map { " (it looks like \($0))" } ?? ""
            throw ViTError.unknownImageFormat(
                path: name, reason: "not a PNG file (bad signature) nor a JPEG file\(looksLike)")
        }
    }
}
