import ArgumentParser
import Foundation
import JPEGIO
import Testing

@testable import ViTKit
@testable import vitclassify

/// The JPEG and EXIF-orientation corpus written by `tools/make_jpeg_fixtures.py` (`Resources/jpeg/manifest.json`).
enum JPEGFixtures {
    static let root: URL = Fixtures.resources.appendingPathComponent("jpeg")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    nonisolated(unsafe) static let manifest: [String: Any] = {
        let data = try! Data(contentsOf: root.appendingPathComponent("manifest.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    struct Image: Sendable, CustomTestStringConvertible {
        let name: String
        let file: String
        let format: String
        let width: Int
        let height: Int
        /// Pillow's `exif_transpose` turned it (a `<name>.transposed` reference exists).
        let transposed: Bool
        /// JPEG only: what the markers say.
        let components: Int?
        let progressive: Bool?
        let arithmetic: Bool?
        let restartInterval: Int?
        let adobeTransform: Int?
        let sampling: [String]?
        /// JPEG only: the system libjpeg-turbo's decode against Pillow's (largest sample difference, share of pixels).
        let systemMax: Int?
        let systemDifferingPixels: Int?
        /// A progressive file whose scans leave coefficients out (the decoder's block smoothing fills them in).
        let incompleteScans: Bool
        var testDescription: String { name }
    }

    static let images: [Image] = (manifest["images"] as! [[String: Any]]).map {
        let difference = $0["libjpeg_difference"] as? [String: Any]
        return Image(
            name: $0["name"] as! String, file: path($0["file"] as! String), format: $0["format"] as! String,
            width: $0["width"] as! Int, height: $0["height"] as! Int, transposed: $0["transposed"] as! Bool,
            components: $0["components"] as? Int, progressive: $0["progressive"] as? Bool,
            arithmetic: $0["arithmetic"] as? Bool, restartInterval: $0["restart_interval"] as? Int,
            adobeTransform: $0["adobe_transform"] as? Int, sampling: $0["sampling"] as? [String],
            systemMax: difference?["max"] as? Int, systemDifferingPixels: difference?["differing_pixels"] as? Int,
            incompleteScans: $0["incomplete_scans"] as? Bool ?? false)
    }
    static var jpegs: [Image] { images.filter { $0.format == "JPEG" } }
    static func image(_ name: String) -> Image { images.first { $0.name == name }! }

    struct Broken: Sendable, CustomTestStringConvertible {
        let name: String
        let path: String
        let expect: String
        let error: String
        var testDescription: String { name }
    }

    static let broken: [Broken] = (manifest["broken"] as! [[String: Any]]).map {
        Broken(
            name: $0["name"] as! String, path: path($0["file"] as! String), expect: $0["expect"] as! String,
            error: $0["error"] as! String)
    }

    struct ExifBlock: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        /// The orientation Pillow's `exif_transpose` applied (1: none).
        let pillowApplies: Int
        var testDescription: String { name }
    }

    static let exifBlocks: [ExifBlock] = (manifest["exif_blocks"] as! [[String: Any]]).map {
        let hex = Array(($0["hex"] as! String).utf8)
        let bytes = stride(from: 0, to: hex.count, by: 2).map {
            UInt8(String(decoding: hex[$0..<$0 + 2], as: UTF8.self), radix: 16)!
        }
        return ExifBlock(name: $0["name"] as! String, bytes: bytes, pillowApplies: $0["pillow_applies"] as! Int)
    }

    static var systemLibjpegVersion: String {
        (manifest["versions"] as! [String: Any])["system_libjpeg_turbo"] as! String
    }

    static let decoded = try! SafeTensorsFile(path: path("decoded.safetensors"))

    static func reference(_ key: String) throws -> RGBImage {
        let info = try #require(decoded.tensors[key], "no reference \(key)")
        return RGBImage(width: info.shape[1], height: info.shape[0], trustedPixels: try decoded.bytes(key))
    }
}

/// How two images of one size differ: the largest sample difference and the pixels with any difference.
func pixelDifference(_ a: RGBImage, _ b: RGBImage) -> (max: Int, pixels: Int) {
    precondition(a.width == b.width && a.height == b.height, "size mismatch")
    var largest = 0, differing = 0
    for p in 0..<(a.width * a.height) {
        var pixel = 0
        for c in 0..<3 { pixel = max(pixel, abs(Int(a.pixels[3 * p + c]) - Int(b.pixels[3 * p + c]))) }
        largest = max(largest, pixel)
        differing += pixel > 0 ? 1 : 0
    }
    return (largest, differing)
}

@Suite("JPEG decoding and EXIF orientation match Pillow")
struct JPEGDecodingTests {
    static let stored = ImageReadOptions(applyExifOrientation: false)

    @Test(
        "every JPEG decodes to Pillow's samples: exactly, except progressive files with missing coefficients, within the measured bound",
        arguments: JPEGFixtures.jpegs)
    func decodesLikePillow(_ fixture: JPEGFixtures.Image) throws {
        let image = try JPEGDecoder.read(fixture.file, options: Self.stored)
        let reference = try JPEGFixtures.reference(fixture.name)
        try #require(image.width == reference.width && image.height == reference.height)
        let difference = pixelDifference(image, reference)
        let measuredMax = try #require(fixture.systemMax), measuredPixels = try #require(fixture.systemDifferingPixels)
        if measuredMax == 0 {
            #expect(difference.max == 0, "\(difference.pixels) pixels differ, by up to \(difference.max)")
            return
        }
        // Pillow 13's bundled libjpeg-turbo (3.x) has the block-smoothing fixes of libjpeg-turbo issues #700 and #721
        // (2-block-wide components; vertical smoothing of 4:2:0) that Debian 12's 2.1.5 lacks. Block smoothing only
        // runs on progressive files whose scans leave coefficients out, so that is the only kind allowed to differ.
        #expect(fixture.incompleteScans, "differs from Pillow, but every coefficient is present")
        #expect(difference.max <= measuredMax && difference.pixels <= measuredPixels)
        // And the difference is the system library's, not ours: the same samples as libjpeg decoding directly.
        if JPEGCodec.libjpegVersion == JPEGFixtures.systemLibjpegVersion {
            #expect(image == (try JPEGFixtures.reference("\(fixture.name).libjpeg")))
        }
    }

    @Test("the header facts are what the fixture claims to exercise", arguments: JPEGFixtures.jpegs)
    func headerFacts(_ fixture: JPEGFixtures.Image) throws {
        let (_, header) = try JPEGCodec.decode(
            try Data(contentsOf: URL(fileURLWithPath: fixture.file)), name: fixture.file, maxPixels: 1 << 30)
        #expect(header.width == fixture.width && header.height == fixture.height)
        #expect(header.components == fixture.components)
        #expect(header.progressive == fixture.progressive)
        #expect(header.arithmetic == fixture.arithmetic)
        #expect(header.restartInterval == fixture.restartInterval)
        #expect(header.adobeTransform == fixture.adobeTransform)
        #expect(header.sampling == fixture.sampling)
        #expect(header.scans >= 1)
    }

    @Test("the colour spaces, subsamplings and codings of the corpus")
    func corpusCoverage() throws {
        var spaces = Set<String>(), samplings = Set<String>()
        var progressive = false, arithmetic = false, restart = false
        for fixture in JPEGFixtures.jpegs {
            let (_, header) = try JPEGCodec.decode(
                try Data(contentsOf: URL(fileURLWithPath: fixture.file)), name: fixture.file, maxPixels: 1 << 30)
            spaces.insert(header.colorSpace)
            samplings.insert(header.sampling.joined(separator: ","))
            progressive = progressive || header.progressive
            arithmetic = arithmetic || header.arithmetic
            restart = restart || header.restartInterval > 0
        }
        #expect(spaces == ["gray", "RGB", "YCbCr", "CMYK", "YCCK"])
        for sampling in ["1x1,1x1,1x1", "2x1,1x1,1x1", "2x2,1x1,1x1", "1x2,1x1,1x1"] { #expect(samplings.contains(sampling)) }
        #expect(progressive && arithmetic && restart)
    }

    @Test(
        "EXIF orientation: all 8, JPEG and PNG, EXIF and XMP, as exif_transpose; --ignore-exif-orientation keeps the stored pixels",
        arguments: JPEGFixtures.images)
    func orientation(_ fixture: JPEGFixtures.Image) throws {
        let viewed = try ImageDecoder.read(fixture.file)
        let stored = try ImageDecoder.read(fixture.file, options: Self.stored)
        let reference = try JPEGFixtures.reference(fixture.name)
        let expected = fixture.transposed ? try JPEGFixtures.reference("\(fixture.name).transposed") : reference
        if fixture.systemMax ?? 0 == 0 {
            #expect(viewed == expected)
            #expect(stored == reference)
        } else {
            #expect(viewed.width == expected.width && viewed.height == expected.height)
        }
    }

    @Test("the orientations themselves: 8 permutations, each undone by its inverse")
    func orientationAlgebra() {
        var generator = SystemRandomNumberGenerator()
        let image = RGBImage(width: 5, height: 3, trustedPixels: (0..<45).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let inverse: [ExifOrientation: ExifOrientation] = [
            .up: .up, .upMirrored: .upMirrored, .down: .down, .downMirrored: .downMirrored,
            .leftMirrored: .leftMirrored, .right: .left, .rightMirrored: .rightMirrored, .left: .right,
        ]
        var seen: [RGBImage] = []
        for orientation in ExifOrientation.allCases {
            let turned = orientation.apply(to: image)
            #expect((turned.width, turned.height) == (orientation.swapsSides ? (3, 5) : (5, 3)))
            #expect(turned.pixels.sorted() == image.pixels.sorted())
            #expect(inverse[orientation]!.apply(to: turned) == image)
            #expect(!seen.contains(turned))
            seen.append(turned)
        }
    }

    @Test(
        "EXIF blocks: the orientation Pillow's exif_transpose applies, however the tag is stored",
        arguments: JPEGFixtures.exifBlocks)
    func exifBlock(_ block: JPEGFixtures.ExifBlock) {
        // The block as the payload of an APP1 segment, where Pillow's encoder put it.
        let length = block.bytes.count + 2
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + block.bytes + [0xFF, 0xD9]
        #expect((OrientationMetadata.inJPEG(Data(jpeg))?.rawValue ?? 1) == block.pillowApplies)
    }

    @Test("XMP tiff:Orientation, attribute or element form, first match")
    func xmp() {
        let cases: [(String, Int?)] = [
            (#"<rdf:Description tiff:Orientation="6"/>"#, 6), ("<tiff:Orientation>3</tiff:Orientation>", 3),
            (#"tiff:Orientation='6' tiff:Orientation="8""#, 8), ("tiff:Orientation", nil), (#"tiff:Orientation="x""#, nil),
        ]
        for (text, expected) in cases { #expect(OrientationMetadata.xmpOrientation(Array(text.utf8)) == expected, "\(text)") }
    }

    @Test("truncated, corrupt and hostile files: one line naming the file and the problem", arguments: JPEGFixtures.broken)
    func broken(_ c: JPEGFixtures.Broken) throws {
        let error = try #require(expectViTError { _ = try ImageDecoder.read(c.path) })
        #expect(errorKind(error) == c.error)
        let message = error.errorDescription ?? ""
        #expect(!message.contains("\n") && message.hasPrefix(c.path + ": "), "\(message)")
        #expect(message.contains(c.expect), "does not say '\(c.expect)': \(message)")
        #expect(message.count < c.path.count + 200, "\(message)")
        // The same from bytes in memory.
        let data = try Data(contentsOf: URL(fileURLWithPath: c.path))
        #expect(expectViTError { _ = try JPEGDecoder.decode(data, name: c.path) } == error)
    }

    @Test("every prefix of a JPEG is refused as truncated, or decodes only when the whole image is there")
    func everyPrefix() throws {
        for name in ["rgb_q75_420", "rgb_q75_420_progressive", "rgb_q80_420_restart_blocks3", "cmyk_q90"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: JPEGFixtures.image(name).file))
            for length in stride(from: 0, to: data.count - 1, by: 7) {
                let error = expectViTError { _ = try JPEGDecoder.decode(data.prefix(length), name: "cut.jpg") }
                let message = error?.errorDescription ?? ""
                #expect(message.contains("truncated") || (length < 4 && !message.isEmpty), "\(name) at \(length): \(message)")
            }
        }
    }

    @Test("--max-pixels applies from the frame header, before decoding")
    func pixelLimit() throws {
        let fixture = JPEGFixtures.image("rgb_q75_420_progressive")
        #expect(throws: ViTError.imageTooLarge(path: fixture.file, width: 37, height: 29, limit: 1000)) {
            try ImageDecoder.read(fixture.file, options: ImageReadOptions(maxPixels: 1000))
        }
        #expect(try ImageDecoder.read(fixture.file, options: ImageReadOptions(maxPixels: 37 * 29)).width == 37)
        // 65000 × 65000 in a 2 KB file: refused from the header at the default limit (nothing is allocated).
        let huge = JPEGFixtures.broken.first { $0.name == "huge_dimensions" }!
        #expect(
            throws: ViTError.imageTooLarge(path: huge.path, width: 65000, height: 65000, limit: ImageReadOptions.defaultMaxPixels)
        ) {
            try ImageDecoder.read(huge.path)
        }
    }

    @Test("the format comes from the signature, not the name; other formats are named with the supported ones")
    func formatBySignature() throws {
        let jpeg = JPEGFixtures.image("jpeg_named_png"), png = JPEGFixtures.image("png_named_jpg")
        #expect(try ImageDecoder.read(jpeg.file) == (try JPEGFixtures.reference(jpeg.name)))
        #expect(try ImageDecoder.read(png.file) == (try JPEGFixtures.reference(png.name)))
        #expect(ImageFormat.detect(try Data(contentsOf: URL(fileURLWithPath: jpeg.file))) == .jpeg)
        #expect(ImageFormat.detect(try Data(contentsOf: URL(fileURLWithPath: png.file))) == .png)
        let cases: [([UInt8], String)] = [
            (Array("GIF89a".utf8) + [1, 0, 1, 0], "not a PNG file (bad signature) nor a JPEG file (it looks like GIF)"),
            (Array("RIFF\u{0}\u{0}\u{0}\u{0}WEBPVP8 ".utf8), "(it looks like WebP)"),
            (Array("hello".utf8), "not a PNG file (bad signature) nor a JPEG file; supported image formats: PNG, JPEG"),
            ([], "x.jpg: file is empty; supported image formats: PNG, JPEG"),
        ]
        for (bytes, expected) in cases {
            let error = expectViTError { _ = try ImageDecoder.decode(Data(bytes), name: "x.jpg") }
            #expect(error.map(errorKind) == "unknownImageFormat")
            #expect(error?.errorDescription?.contains(expected) == true, "\(error?.errorDescription ?? "")")
        }
        // A damaged PNG signature is still a PNG's problem: the PNG decoder's message.
        let error = expectViTError { _ = try ImageDecoder.decode(Data([0x89, 0x50, 0x4E, 0x47, 0x0A]), name: "x.png") }
        #expect(error == .imageDecodingFailed(path: "x.png", reason: "not a PNG file (bad signature)"))
    }

    @Test("the C layer directly: status, header, message")
    func cLayer() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: JPEGFixtures.image("gray_q90").file))
        var info = jpegio_info()
        var message = [CChar](repeating: 0, count: 256)
        var pixels: UnsafeMutablePointer<UInt8>? = nil
        let status = data.withUnsafeBytes {
            jpegio_decode($0.bindMemory(to: UInt8.self).baseAddress, $0.count, 1 << 20, &info, &pixels, &message, 256)
        }
        #expect(status == Int32(JPEGIO_OK) && pixels != nil)
        #expect(info.width == 37 && info.height == 29 && info.components == 1 && info.adobe_transform == -1)
        jpegio_free(pixels)
        let cut = data.prefix(100)
        let truncated = cut.withUnsafeBytes {
            jpegio_decode($0.bindMemory(to: UInt8.self).baseAddress, $0.count, 1 << 20, &info, &pixels, &message, 256)
        }
        #expect(truncated == Int32(JPEGIO_ERROR) && pixels == nil)
        let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #expect(text == "file is truncated (premature end of JPEG data after 100 bytes)")
        #expect(JPEGCodec.libjpegVersion.first?.isNumber == true)
    }

    @Test("classify reads JPEGs; overlays are drawn on the image as viewers show it; --ignore-exif-orientation turns that off")
    func cli() throws {
        var command = try Classify.parse([JPEGFixtures.image("orientation_6").file])
        #expect(command.imageArguments.options.applyExifOrientation)
        command = try Classify.parse([JPEGFixtures.image("orientation_6").file, "--ignore-exif-orientation"])
        #expect(!command.imageArguments.options.applyExifOrientation)
        let batch = try Batch.parse(["dir", "--ignore-exif-orientation"]),
            eval = try Eval.parse(["dir", "--ignore-exif-orientation"])
        #expect(!batch.imageArguments.options.applyExifOrientation && !eval.imageArguments.options.applyExifOrientation)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vit-jpeg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = JPEGFixtures.image("orientation_6").file, model = AttentionTests.overlayModel
        let viewed = directory.appendingPathComponent("viewed.png").path
        let stored = directory.appendingPathComponent("stored.png").path
        try Classify.parse([input, "--model", model, "--overlay", viewed, "--format", "json"]).run()
        try Classify.parse([input, "--model", model, "--overlay", stored, "--ignore-exif-orientation", "--format", "json"])
            .run()
        let a = try PNGDecoder.read(viewed), b = try PNGDecoder.read(stored)
        #expect(a.width == b.height && a.height == b.width && a.height > a.width)  // 13×7 stored, 7×13 as viewed
    }
}
