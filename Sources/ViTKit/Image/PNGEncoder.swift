import Foundation

/// Writes ``RGBImage``s as 8-bit RGB PNG files with libpng.
package enum PNGEncoder {
    /// Writes `image` to `path` atomically (temporary file in the same folder, then rename).
    ///
    /// - Parameters:
    ///   - overwrite: replace an existing file (otherwise an existing file is an error and stays as it was).
    ///   - protected: files that must never be replaced, such as the input image.
    package static func write(_ image: RGBImage, to path: String, overwrite: Bool = false, protected: [String] = []) throws {
        try FileIO.writeAtomically(path, overwrite: overwrite, protected: protected) { temporary in
            try PNGCodec.writeRGB(image, to: temporary, displayName: path)
        }
    }
}
