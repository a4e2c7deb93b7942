import CZlib
import Foundation

/// zlib streams (RFC 1950: deflate with a header and an Adler-32), the format a browser's
/// `DecompressionStream('deflate')` reads. zlib is already on every machine that has libpng.
package enum Deflate {
    /// Compresses `bytes` into one zlib stream.
    ///
    /// The corresponding C function is `compress2()`.
    package static func compress(_ bytes: [UInt8], level: Int32 = 6) throws -> [UInt8] {
        var capacity = compressBound(uLong(bytes.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = out.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { input in
                compress2(out.baseAddress!, &capacity, input.baseAddress, uLong(input.count), level)
            }
        }
        guard status == Z_OK else { throw ViTError.invalidArgument("zlib compress2 failed with status \(status)") }
        out.removeSubrange(Int(capacity)...)
        return out
    }

    /// Decompresses one zlib stream whose decompressed size is known.
    ///
    /// The corresponding C function is `uncompress()`.
    package static func decompress(_ bytes: [UInt8], size: Int) throws -> [UInt8] {
        var length = uLong(size)
        var out = [UInt8](repeating: 0, count: max(size, 1))
        let status = out.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { input in
                uncompress(out.baseAddress!, &length, input.baseAddress, uLong(input.count))
            }
        }
        guard status == Z_OK, Int(length) == size else {
            throw ViTError.invalidArgument("zlib stream is damaged (status \(status), \(length) of \(size) bytes)")
        }
        return size == 0 ? [] : out
    }
}
