import Foundation
import JPEGIO

/// The JPEG codec: a thin Swift wrapper over `jpeg_io.c`, which is the only code that calls libjpeg.
///
/// C status codes become ``ViTError``s here; nothing above this file sees a pointer or a status.
enum JPEGCodec {
    /// Header facts of a JPEG (as far as they were read).
    struct Header: Sendable, Equatable {
        var width: Int
        var height: Int
        /// 1, 3 or 4.
        var components: Int
        /// libjpeg's name for the stored colour space: "gray", "RGB", "YCbCr", "CMYK", "YCCK".
        var colorSpace: String
        var progressive: Bool
        var arithmetic: Bool
        /// MCUs between restart markers, 0 without them.
        var restartInterval: Int
        /// The Adobe APP14 transform code, nil without an Adobe marker.
        var adobeTransform: Int?
        /// Horizontal × vertical sampling factor of each component, e.g. [2x2, 1x1, 1x1] for 4:2:0.
        var sampling: [String]
        /// Scans read (0 unless the decode succeeded).
        var scans: Int
    }

    /// Decodes JPEG bytes into 8-bit RGB, as Pillow's `convert("RGB")` does (see `jpeg_io.h`).
    ///
    /// The corresponding C function is `jpegio_decode()`.
    /// - Parameter name: the file name used in error messages.
    /// - Throws: ``ViTError/jpegDecodingFailed(path:reason:)``, ``ViTError/imageTooLarge(path:width:height:limit:)``.
    static func decode(_ data: Data, name: String, maxPixels: Int) throws -> (RGBImage, Header) {
        var info = jpegio_info()
        var message = [CChar](repeating: 0, count: 256)
        var output: UnsafeMutablePointer<UInt8>? = nil
        let status = data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> Int32 in
            let base = bytes.bindMemory(to: UInt8.self).baseAddress
            return jpegio_decode(base, bytes.count, UInt64(max(0, maxPixels)), &info, &output, &message, 256)
        }
        let header = Header(info)
        switch Int(status) {
        case Int(JPEGIO_OK):
            guard let output else { throw ViTError.jpegDecodingFailed(path: name, reason: "no pixels") }
            defer { jpegio_free(output) }
            let count = header.width * header.height * 3
            let pixels = [UInt8](UnsafeBufferPointer(start: output, count: count))
            return (RGBImage(width: header.width, height: header.height, trustedPixels: pixels), header)
        case Int(JPEGIO_TOO_MANY_PIXELS):
            throw ViTError.imageTooLarge(path: name, width: header.width, height: header.height, limit: maxPixels)
        case Int(JPEGIO_OUT_OF_MEMORY):
            throw ViTError.jpegDecodingFailed(path: name, reason: "out of memory")
        default:
            throw ViTError.jpegDecodingFailed(path: name, reason: text(message))
        }
    }

    /// The text of a NUL-terminated C message buffer.
    private static func text(_ message: [CChar]) -> String {
        String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The libjpeg-turbo version this build links against (its headers' version).
    static var libjpegVersion: String { String(cString: jpegio_libjpeg_version()) }
}

extension JPEGCodec.Header {
    fileprivate init(_ info: jpegio_info) {
        let spaces = [1: "gray", 2: "RGB", 3: "YCbCr", 4: "CMYK", 5: "YCCK"]
        let h = [info.h_samp.0, info.h_samp.1, info.h_samp.2, info.h_samp.3]
        let v = [info.v_samp.0, info.v_samp.1, info.v_samp.2, info.v_samp.3]
        self.init(
            width: Int(info.width), height: Int(info.height), components: Int(info.components),
            colorSpace: spaces[Int(info.color_space)] ?? "unknown", progressive: info.progressive != 0,
            arithmetic: info.arithmetic != 0, restartInterval: Int(info.restart_interval),
            adobeTransform: info.adobe_transform >= 0 ? Int(info.adobe_transform) : nil,
            sampling: (0..<min(4, max(0, Int(info.components)))).map { "\(h[$0])x\(v[$0])" }, scans: Int(info.scans))
    }
}
