import Foundation
import PNGIO

/// The PNG codec: thin Swift wrappers over `png_io.c`, which is the only code that calls libpng.
///
/// C status codes become ``ViTError``s here; nothing above this file sees a pointer or a status.
enum PNGCodec {
    /// Header facts of a decoded PNG.
    struct Header: Sendable, Equatable {
        var width: Int
        var height: Int
        var bitDepth: Int
        var colorType: Int
        var interlaced: Bool
        var hasAlpha: Bool
    }

    /// Decodes PNG bytes into 8-bit RGB.
    ///
    /// The corresponding C function is `pngio_decode()`.
    /// - Parameter name: the file name used in error messages.
    static func decode(_ data: Data, name: String, options: ImageReadOptions) throws -> (RGBImage, Header) {
        var info = pngio_info()
        var message = [CChar](repeating: 0, count: 256)
        var output: UnsafeMutablePointer<UInt8>? = nil
        let background: [UInt8]? = options.background.map { [$0.0, $0.1, $0.2] }
        let status = data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> Int32 in
            let base = bytes.bindMemory(to: UInt8.self).baseAddress
            let maxPixels = UInt64(max(0, options.maxPixels))
            if let background {
                return background.withUnsafeBufferPointer {
                    pngio_decode(base, bytes.count, maxPixels, $0.baseAddress, &info, &output, &message, 256)
                }
            }
            return pngio_decode(base, bytes.count, maxPixels, nil, &info, &output, &message, 256)
        }
        let header = Header(
            width: Int(info.width), height: Int(info.height), bitDepth: Int(info.bit_depth),
            colorType: Int(info.color_type), interlaced: info.interlaced != 0, hasAlpha: info.has_alpha != 0)
        switch Int(status) {
        case Int(PNGIO_OK):
            guard let output else { throw ViTError.imageDecodingFailed(path: name, reason: "no pixels") }
            defer { pngio_free(output) }
            let count = header.width * header.height * 3
            let pixels = [UInt8](UnsafeBufferPointer(start: output, count: count))
            return (RGBImage(width: header.width, height: header.height, trustedPixels: pixels), header)
        case Int(PNGIO_TOO_MANY_PIXELS):
            throw ViTError.imageTooLarge(path: name, width: header.width, height: header.height, limit: options.maxPixels)
        case Int(PNGIO_OUT_OF_MEMORY):
            throw ViTError.imageDecodingFailed(path: name, reason: "out of memory")
        default:
            throw ViTError.imageDecodingFailed(path: name, reason: text(message))
        }
    }

    /// The largest width or height a PNG can store (2^31 − 1).
    static let maximumSide = Int(Int32.max)

    /// Writes 8-bit RGB pixels to `path` (which must be a temporary path the caller renames into place).
    ///
    /// Any size PNG allows is written, 1 to 2^31 − 1 a side; an empty image or a larger side is refused with
    /// libpng's reason (callers that choose sizes bound them first: overlays by ``Overlay/Budget``).
    /// The corresponding C function is `pngio_write_rgb8()`.
    /// - Throws: ``ViTError/writeFailed(path:reason:)``.
    static func writeRGB(_ image: RGBImage, to path: String, displayName: String) throws {
        guard image.width <= maximumSide && image.height <= maximumSide else {
            throw ViTError.writeFailed(
                path: displayName,
                reason: "a \(image.width)×\(image.height) image cannot be stored in a PNG (at most \(maximumSide) a side)")
        }
        var message = [CChar](repeating: 0, count: 256)
        // Sizes within 0…2^31 − 1 (checked above, RGBImage rules out negatives): the conversions cannot trap.
        let status = image.pixels.withUnsafeBufferPointer {
            pngio_write_rgb8(path, $0.baseAddress, UInt32(image.width), UInt32(image.height), &message, 256)
        }
        guard status == Int32(PNGIO_OK) else {
            throw ViTError.writeFailed(path: displayName, reason: text(message))
        }
    }

    /// The text of a NUL-terminated C message buffer.
    private static func text(_ message: [CChar]) -> String {
        String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static var libpngVersion: String { String(cString: pngio_libpng_version()) }
}
