import Foundation
import Testing

@testable import ViTKit

@Suite("PNG decoding matches Pillow's samples")
struct PNGDecodingTests {
    @Test("every colour type, bit depth and interlace decodes to the reference samples", arguments: Fixtures.images.map(\.name))
    func decodesLikePillow(name: String) throws {
        let fixture = Fixtures.image(name)
        let image = try PNGDecoder.read(fixture.file)
        let reference = try Fixtures.referenceImage(name)
        #expect(image.width == reference.width && image.height == reference.height)
        let differing = zip(image.pixels, reference.pixels).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) samples differ")
    }

    @Test("--background composites alpha and tRNS over a colour", arguments: Fixtures.images.filter(\.hasAlpha).map(\.name))
    func compositesOverBackground(name: String) throws {
        let image = try PNGDecoder.read(Fixtures.image(name).file, options: ImageReadOptions(background: (10, 20, 30)))
        let reference = try Fixtures.referenceImage(name, key: "\(name).background_10_20_30")
        let differing = zip(image.pixels, reference.pixels).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) samples differ")
    }

    @Test("images over the pixel limit are refused before decoding")
    func pixelLimit() throws {
        let fixture = Fixtures.image("rgb8_32x32")
        #expect(throws: ViTError.imageTooLarge(path: fixture.file, width: 32, height: 32, limit: 1000)) {
            try PNGDecoder.read(fixture.file, options: ImageReadOptions(maxPixels: 1000))
        }
    }

    @Test("a PNG written by the encoder reads back identically")
    func roundTrip() throws {
        let reference = try Fixtures.referenceImage("rgb8_37x23")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vit-roundtrip-\(getpid()).png").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PNGEncoder.write(reference, to: path)
        #expect(try PNGDecoder.read(path) == reference)
        #expect(throws: ViTError.self) { try PNGEncoder.write(reference, to: path) }  // exists, no overwrite
    }
}
