import Foundation

/// The EXIF orientation (TIFF tag 274): how the stored pixels must be turned to show the picture as a viewer does.
///
/// Hugging Face transformers' `load_image` applies it (`ImageOps.exif_transpose`); timm's `inference.py` does not.
/// ``ImageDecoder`` applies it unless ``ImageReadOptions/applyExifOrientation`` is false
/// (`--ignore-exif-orientation`).
package enum ExifOrientation: Int, Sendable, CaseIterable {
    /// 1: as stored.
    case up = 1
    /// 2: mirrored left to right (Pillow `FLIP_LEFT_RIGHT`).
    case upMirrored = 2
    /// 3: turned half a turn (Pillow `ROTATE_180`).
    case down = 3
    /// 4: mirrored top to bottom (Pillow `FLIP_TOP_BOTTOM`).
    case downMirrored = 4
    /// 5: transposed, rows become columns (Pillow `TRANSPOSE`).
    case leftMirrored = 5
    /// 6: turned a quarter turn clockwise (Pillow `ROTATE_270`, which is counter-clockwise degrees).
    case right = 6
    /// 7: transposed across the other diagonal (Pillow `TRANSVERSE`).
    case rightMirrored = 7
    /// 8: turned a quarter turn counter-clockwise (Pillow `ROTATE_90`).
    case left = 8

    /// Whether width and height swap.
    package var swapsSides: Bool { rawValue >= 5 }

    /// `image` as a viewer shows it: the same pixels as Pillow's `exif_transpose` (a pure permutation).
    ///
    /// - Complexity: O(pixels).
    package func apply(to image: RGBImage) -> RGBImage {
        if self == .up { return image }
        let w = image.width, h = image.height
        let (outWidth, outHeight) = swapsSides ? (h, w) : (w, h)
        // Output pixel (x, y) comes from source pixel base(y) + x * step (indices in pixels).
        func start(_ y: Int) -> Int {
            switch self {
            case .up: y * w
            case .upMirrored: y * w + w - 1
            case .down: (h - 1 - y) * w + w - 1
            case .downMirrored: (h - 1 - y) * w
            case .leftMirrored: y
            case .right: (h - 1) * w + y
            case .rightMirrored: (h - 1) * w + w - 1 - y
            case .left: w - 1 - y
            }
        }
        let step: Int
        switch self {
        case .up, .downMirrored: step = 1
        case .upMirrored, .down: step = -1
        case .leftMirrored, .left: step = w
        case .right, .rightMirrored: step = -w
        }
        let count = outWidth * outHeight * 3
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            image.pixels.withUnsafeBufferPointer { source in
                var o = 0
                for y in 0..<outHeight {
                    var s = start(y) * 3
                    for _ in 0..<outWidth {
                        out[o] = source[s]
                        out[o + 1] = source[s + 1]
                        out[o + 2] = source[s + 2]
                        o += 3
                        s += step * 3
                    }
                }
            }
            initialized = count
        }
        return RGBImage(width: outWidth, height: outHeight, trustedPixels: pixels)
    }
}

/// Finding the orientation in a file's metadata, as Pillow's `Image.getexif()` does (Pillow 13): EXIF IFD0 tag 274,
/// and only when the EXIF has no such tag, the XMP `tiff:Orientation`.
///
/// Every read is bounds-checked; metadata that cannot be parsed means "no orientation" (never an error: the pixels
/// are still good). Not read (Pillow reads them): PNG `Raw profile type exif` text chunks (ImageMagick's legacy way)
/// and compressed XMP `iTXt` chunks.
enum OrientationMetadata {
    /// What IFD0 says about tag 274.
    enum Tag: Equatable {
        /// No tag 274 that Pillow would accept (then the XMP is consulted).
        case absent
        /// The tag's first value as a number (any numeric TIFF type), nil for BYTE/ASCII/UNDEFINED values.
        case present(Double?)
    }

    /// The orientation of a value as Pillow's `exif_transpose` maps it: an integral 1...8, anything else none.
    static func orientation(_ value: Double?) -> ExifOrientation? {
        guard let value, value.isFinite, value == value.rounded(), value >= 1, value <= 8 else { return nil }
        return ExifOrientation(rawValue: Int(value))
    }

    /// The orientation an EXIF block (and an XMP packet) give, Pillow's rule: EXIF first, XMP only without the tag.
    static func orientation(exif: [UInt8]?, xmp: [UInt8]?) -> ExifOrientation? {
        switch exif.map(tiffOrientation) ?? .absent {
        case .present(let value): return orientation(value)
        case .absent: return xmp.flatMap(xmpOrientation).flatMap { ExifOrientation(rawValue: $0) }
        }
    }

    // MARK: JPEG

    /// The orientation in a JPEG's APP1 segments (read up to the first SOS, as Pillow's `JpegImageFile._open`).
    ///
    /// EXIF: the first APP1 starting `Exif\0\0`, later ones appended without their 6-byte prefix. XMP: the last APP1
    /// starting `http://ns.adobe.com/xap/1.0/\0`, after that prefix.
    static func inJPEG(_ data: Data) -> ExifOrientation? {
        data.withUnsafeBytes { inJPEG(bytes: $0) }
    }

    private static func inJPEG(bytes: UnsafeRawBufferPointer) -> ExifOrientation? {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return nil }
        let exifPrefix = Array("Exif\0\0".utf8), xmpPrefix = Array("http://ns.adobe.com/xap/1.0/\0".utf8)
        var exif: [UInt8]?
        var xmp: [UInt8]?
        var i = 2
        while i + 1 < bytes.count {
            guard bytes[i] == 0xFF else {  // junk between segments is skipped, as Pillow does
                i += 1
                continue
            }
            let marker = bytes[i + 1]
            switch marker {
            case 0xFF:  // fill byte
                i += 1
                continue
            case 0x00, 0x01, 0xD0...0xD8:  // stuffed zero, TEM, RSTn, SOI: no length
                i += 2
                continue
            case 0xD9, 0xDA:  // EOI, SOS: the metadata is over
                return orientation(exif: exif, xmp: xmp)
            default: break
            }
            guard i + 4 <= bytes.count else { break }
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length >= 2, i + 2 + length <= bytes.count else { break }
            let payload = bytes[(i + 4)..<(i + 2 + length)]
            if marker == 0xE1 {
                if payload.starts(with: exifPrefix) {
                    if exif == nil { exif = Array(payload) } else { exif! += payload.dropFirst(exifPrefix.count) }
                } else if payload.starts(with: xmpPrefix) {
                    xmp = Array(payload.dropFirst(xmpPrefix.count))
                }
            }
            i += 2 + length
        }
        return orientation(exif: exif, xmp: xmp)
    }

    // MARK: PNG

    /// The orientation in a PNG's `eXIf` chunk (the last one with a good CRC, before or after the image data) or, only
    /// without one, in an uncompressed `iTXt` XMP packet (`XML:com.adobe.xmp`).
    static func inPNG(_ data: Data) -> ExifOrientation? {
        data.withUnsafeBytes { inPNG(bytes: $0) }
    }

    private static func inPNG(bytes: UnsafeRawBufferPointer) -> ExifOrientation? {
        guard bytes.count >= 8, bytes[0] == 0x89, bytes[1] == 0x50 else { return nil }
        var exif: [UInt8]?
        var xmp: [UInt8]?
        var i = 8
        while i + 12 <= bytes.count {
            let length = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length <= bytes.count - i - 12 else { break }
            let type = bytes[(i + 4)..<(i + 8)]
            let body = bytes[(i + 8)..<(i + 8 + length)]
            if type.elementsEqual("IEND".utf8) { break }
            let isEXIF = type.elementsEqual("eXIf".utf8), isText = type.elementsEqual("iTXt".utf8)
            // The CRC of the two chunks used (the image data's is libpng's business).
            if isEXIF || isText,
                bytes[(i + 8 + length)..<(i + 12 + length)].reduce(UInt32(0), { $0 << 8 | UInt32($1) })
                    == crc32(bytes[(i + 4)..<(i + 8 + length)])
            {
                if isEXIF {
                    exif = Array("Exif\0\0".utf8) + body  // Pillow keeps it with the JPEG prefix
                } else {
                    xmp = uncompressedXMP(body) ?? xmp
                }
            }
            i += 12 + length
        }
        return orientation(exif: exif, xmp: xmp)
    }

    /// The text of an uncompressed `iTXt` chunk whose keyword is `XML:com.adobe.xmp`.
    private static func uncompressedXMP(_ body: Slice<UnsafeRawBufferPointer>) -> [UInt8]? {
        let keyword = Array("XML:com.adobe.xmp".utf8)
        guard body.starts(with: keyword + [0]) else { return nil }
        var i = body.startIndex + keyword.count + 1
        guard i + 2 <= body.endIndex, body[i] == 0 else { return nil }  // compression flag 0
        i += 2
        for _ in 0..<2 {  // language tag, translated keyword
            guard let end = body[i...].firstIndex(of: 0) else { return nil }
            i = end + 1
        }
        return Array(body[i...])
    }

    private static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// The CRC-32 of PNG chunks (ISO 3309, as zlib's `crc32`).
    static func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    // MARK: TIFF (the EXIF block)

    /// Tag 274 of IFD0 in an EXIF block, read as Pillow's `Exif.load` and `ImageFileDirectory_v2.load` do.
    ///
    /// Up to two leading `Exif\0\0` are skipped; the TIFF header must be `II*\0` or `MM\0*`. Entries are read until
    /// the IFD ends or the data does; of the entries for tag 274, the first whose type is known and whose value is
    /// all there counts. Values that do not fit in the entry are at an offset from the TIFF header, and (as Pillow)
    /// skipped once the out-of-line sizes of all entries so far add up to more than the block.
    static func tiffOrientation(_ block: [UInt8]) -> Tag {
        var start = 0
        let prefix = Array("Exif\0\0".utf8)
        for _ in 0..<2 where block[start...].starts(with: prefix) { start += prefix.count }
        let tiff = Array(block[start...])
        guard tiff.count >= 8 else { return .absent }
        let little: Bool
        switch (tiff[0], tiff[1], tiff[2], tiff[3]) {
        case (0x49, 0x49, 0x2A, 0x00): little = true
        case (0x4D, 0x4D, 0x00, 0x2A): little = false
        default: return .absent
        }
        func unsigned(_ at: Int, _ size: Int) -> UInt64 {
            var value: UInt64 = 0
            for k in 0..<size { value |= UInt64(tiff[at + (little ? k : size - 1 - k)]) << (8 * k) }
            return value
        }
        let ifd = Int(unsigned(4, 4))
        guard ifd <= tiff.count - 2 else { return .absent }
        let entries = Int(unsigned(ifd, 2))
        // Bytes per value of the types Pillow reads (others are skipped).
        let units: [Int: Int] = [1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8]
        var outOfLine = 0
        for n in 0..<entries {
            let entry = ifd + 2 + 12 * n
            guard entry <= tiff.count - 12 else { break }
            let tag = unsigned(entry, 2), type = Int(unsigned(entry + 2, 2)), count = Int(unsigned(entry + 4, 4))
            guard let unit = units[type] else { continue }
            let size = count * unit
            var at = entry + 8
            if size > 4 {
                outOfLine += size
                guard outOfLine <= tiff.count else { continue }
                at = Int(unsigned(entry + 8, 4))
                guard at <= tiff.count - size else { continue }
            }
            guard size > 0, tag == 274 else { continue }
            return .present(firstValue(type: type, at: at, unsigned))
        }
        return .absent
    }

    /// The first value of a TIFF field as a number; nil for BYTE, ASCII and UNDEFINED (Pillow gives bytes or text).
    private static func firstValue(type: Int, at: Int, _ unsigned: (Int, Int) -> UInt64) -> Double? {
        switch type {
        case 3: return Double(unsigned(at, 2))
        case 4, 13: return Double(unsigned(at, 4))
        case 16: return Double(unsigned(at, 8))
        case 6: return Double(Int8(truncatingIfNeeded: unsigned(at, 1)))
        case 8: return Double(Int16(truncatingIfNeeded: unsigned(at, 2)))
        case 9: return Double(Int32(truncatingIfNeeded: unsigned(at, 4)))
        case 5: return Double(unsigned(at, 4)) / Double(unsigned(at + 4, 4))
        case 10:
            return Double(Int32(truncatingIfNeeded: unsigned(at, 4))) / Double(Int32(truncatingIfNeeded: unsigned(at + 4, 4)))
        case 11: return Double(Float(bitPattern: UInt32(unsigned(at, 4))))
        case 12: return Double(bitPattern: unsigned(at, 8))
        default: return nil
        }
    }

    // MARK: XMP

    /// The digit after the first `tiff:Orientation="` or `tiff:Orientation>` (Pillow's pattern
    /// `tiff:Orientation(="|>)([0-9])`).
    static func xmpOrientation(_ xmp: [UInt8]) -> Int? {
        let name = Array("tiff:Orientation".utf8)
        guard xmp.count > name.count else { return nil }
        var i = 0
        while i + name.count < xmp.count {
            if xmp[i] == name[0], xmp[i..<(i + name.count)].elementsEqual(name) {
                let j = i + name.count
                if xmp[j] == UInt8(ascii: ">"), j + 1 < xmp.count, let digit = digit(xmp[j + 1]) { return digit }
                if xmp[j] == UInt8(ascii: "="), j + 2 < xmp.count, xmp[j + 1] == UInt8(ascii: "\""),
                    let digit = digit(xmp[j + 2])
                {
                    return digit
                }
            }
            i += 1
        }
        return nil
    }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }
}
