import Foundation
import PNGIO
import Testing

@testable import ViTKit

/// The PNG writer on degenerate and large sizes, and the overlay pixel budget (``Overlay/Budget``): overlays of
/// 1×N and N×1 images used to be enlarged to 224×(224·N) and crash the writer.
@Suite("Overlay writer")
struct OverlayWriterTests {
    /// A fresh temporary folder, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vit-overlay-writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// An image whose every sample differs from its neighbours (a multiplicative hash of its index).
    static func pattern(width: Int, height: Int) -> RGBImage {
        let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { buffer, count in
            for i in 0..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: (i &* 2_654_435_761) >> 13) }
            count = buffer.count
        }
        return RGBImage(width: width, height: height, trustedPixels: pixels)
    }

    static let writerSizes: [(Int, Int)] = [
        (1, 1), (1, 2), (2, 1), (1, 4500), (4500, 1),
        // The budget's edges: the longest side, and the whole pixel count in three shapes.
        (1, 8192), (8192, 1), (8192, 2048), (2048, 8192), (4096, 4096),
        // Over libpng's default limit of 1,000,000 a side (which the writer used to keep and the reader lifts).
        (1, 1_000_001), (1_000_001, 1),
    ]

    @Test("the PNG writer round-trips 1×N, N×1, 1×1 and the budget's edge sizes", arguments: writerSizes)
    func writerRoundTrip(width: Int, height: Int) throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = Self.pattern(width: width, height: height)
        let path = directory.appendingPathComponent("\(width)x\(height).png").path
        try PNGEncoder.write(image, to: path)
        let back = try PNGDecoder.read(path)
        #expect(back.width == width && back.height == height)
        #expect(back.pixels == image.pixels)
    }

    @Test("the writer refuses sizes a PNG cannot hold with libpng's reasons, from its own state, in one line")
    func writerRefusals() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("refused.png").path
        // Straight to C: libpng warns about the IHDR, then fails; the warnings are the writer's own.
        let pixel: [UInt8] = [1, 2, 3]
        for (width, height, warning): (UInt32, UInt32, String) in [
            (0, 5, "Image width is zero in IHDR"), (5, 0, "Image height is zero in IHDR"),
            (0x8000_0000, 1, "Invalid image width in IHDR"), (1, 0x8000_0000, "Invalid image height in IHDR"),
        ] {
            var message = [CChar](repeating: 0x55, count: 256)
            let status = pixel.withUnsafeBufferPointer { pngio_write_rgb8(path, $0.baseAddress, width, height, &message, 256) }
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(status == Int32(PNGIO_IO_ERROR))
            #expect(text.hasPrefix("Invalid IHDR data (") && text.contains(warning), "\(width)×\(height): \(text)")
        }
        // Through the library: a ViTError with one line, and nothing left behind.
        let empty = directory.appendingPathComponent("empty.png").path
        do {
            try PNGEncoder.write(RGBImage(width: 0, height: 0, trustedPixels: []), to: empty)
            Issue.record("an empty image was written")
        } catch let error as ViTError {
            let text = error.errorDescription ?? ""
            #expect(text.contains("Invalid IHDR data") && text.contains("Image width is zero in IHDR"))
            #expect(!text.contains("\n"))
        }
        #expect(!FileManager.default.fileExists(atPath: empty))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".tmp-") }.isEmpty)
    }

    @Test("overlay sizes: the enlargement rule, lowered or reduced to fit the budget", arguments: [
        // The rule alone (within the budget).
        (28, 28, 224, 224), (301, 217, 602, 434), (224, 500, 224, 500), (1000, 223, 2000, 446), (1, 1, 224, 224),
        // Enlargement lowered to the largest integer factor that fits.
        (1, 4500, 1, 4500), (4500, 1, 4500, 1), (20, 1000, 160, 8000), (1, 4096, 2, 8192), (100, 4000, 200, 8000),
        // At the budget's edges.
        (1, 8192, 1, 8192), (8192, 2048, 8192, 2048), (4096, 4096, 4096, 4096),
        // Over the budget: reduced by one factor, each side at least 1.
        (1, 8193, 1, 8192), (8193, 1, 8192, 1), (1, 20000, 1, 8192), (10000, 3, 8192, 2), (4097, 4097, 4096, 4096),
        (20000, 10000, 5792, 2896), (10000, 10000, 4096, 4096), (1, 2_147_483_647, 1, 8192),
        // Sizes no image has, which the arithmetic must survive.
        (Int.max, 1, 8192, 1), (Int.max, Int.max, 4096, 4096),
    ])
    func overlaySize(width: Int, height: Int, expectedWidth: Int, expectedHeight: Int) {
        let size = Overlay.size(width: width, height: height)
        #expect(size.width == expectedWidth && size.height == expectedHeight)
        #expect(Overlay.Budget.standard.allows(width: size.width, height: size.height))
    }

    @Test("every overlay size is the largest allowed multiple, within the budget, each side at least 1")
    func overlaySizeProperties() {
        let budget = Overlay.Budget.standard
        let sides = [1, 2, 3, 7, 27, 28, 100, 223, 224, 225, 447, 1000, 2048, 4095, 4096, 4097, 8191, 8192, 8193, 12345, 100_000]
        for width in sides {
            for height in sides {
                let size = Overlay.size(width: width, height: height), k = Overlay.scale(width: width, height: height)
                #expect(size.width >= 1 && size.height >= 1 && budget.allows(width: size.width, height: size.height))
                let rule = min(width, height) >= 224 ? 1 : (224 + min(width, height) - 1) / min(width, height)
                if budget.allows(width: width, height: height) {
                    // An integer enlargement, no larger than the rule, and the next factor would not fit.
                    #expect(size.width == width * k && size.height == height * k && 1 <= k && k <= rule)
                    #expect(k == rule || !budget.allows(width: width * (k + 1), height: height * (k + 1)))
                } else {
                    // Reduced, keeping the aspect ratio to within a pixel a side.
                    #expect(k == 1 && size.width <= width && size.height <= height)
                    let factor = Double(max(size.width, size.height)) / Double(max(width, height))
                    #expect(abs(Double(min(width, height)) * factor - Double(min(size.width, size.height))) <= 1.0)
                }
            }
        }
    }

    @Test("a grid of tiles within their share of the budget fits the budget", arguments: [1, 3, 4, 12, 16])
    func tileBudget(count: Int) {
        let columns = Int(Double(count).squareRoot().rounded(.up)), rows = (count + columns - 1) / columns
        let tile = Overlay.Budget.standard.tiles(count: count, columns: columns, gap: 4)
        for (width, height) in [(28, 28), (1, 4500), (4500, 1), (6000, 4000), (100_000, 3)] {
            let size = Overlay.size(width: width, height: height, budget: tile)
            let gridWidth = columns * size.width + (columns - 1) * 4, gridHeight = rows * size.height + (rows - 1) * 4
            #expect(Overlay.Budget.standard.allows(width: gridWidth, height: gridHeight), "\(count) × \(width)×\(height)")
        }
        // Small images keep the enlargement rule in a grid.
        #expect(Overlay.size(width: 28, height: 28, budget: tile) == (224, 224))
        // No count or gap overflows; a share never drops below one pixel.
        let absurd = Overlay.Budget.standard.tiles(count: Int.max, columns: Int.max, gap: Int.max)
        #expect(absurd.maxSide == 1 && absurd.maxPixels == 1)
    }

    @Test("a reduced overlay averages the pixels each output pixel covers; an enlarged one replicates them")
    func resampling() {
        let preprocessing = Preprocessing(
            resize: .exact(height: 4, width: 4), filter: .bilinear, crop: nil, cropRounding: .floor, mean: [0, 0, 0],
            std: [1, 1, 1])
        // 4×2, reduced to 2×1 by a budget of 2 pixels: each output pixel is the mean of a 2×2 block.
        let image = RGBImage(
            width: 4, height: 2,
            trustedPixels: [
                0, 10, 20, 2, 12, 22, 100, 0, 255, 101, 1, 255,
                4, 14, 24, 6, 16, 26, 102, 2, 255, 104, 4, 254,
            ])
        let map: [Float] = [1, 0, 0, 1]
        let reduced = Overlay.render(
            image: image, map: map, gridHeight: 2, gridWidth: 2, preprocessing: preprocessing, alpha: 0,
            budget: Overlay.Budget(maxSide: 2, maxPixels: 2))
        #expect(reduced.width == 2 && reduced.height == 1)
        // (0+2+4+6)/4 = 3, (10+12+14+16)/4 = 13, 23; (100+101+102+104)/4 = 101.75 → 102, 7/4 → 2, 1019/4 → 255.
        #expect(reduced.pixels == [3, 13, 23, 102, 2, 255])
        // Enlarged ×112 (short side 2 → 224): pixel replication.
        let enlarged = Overlay.render(image: image, map: map, gridHeight: 2, gridWidth: 2, preprocessing: preprocessing, alpha: 0)
        #expect(enlarged.width == 4 * 112 && enlarged.height == 2 * 112)
        for (x, y) in [(0, 0), (111, 111), (112, 0), (447, 223), (300, 150)] {
            #expect(enlarged[x, y] == image[x / 112, y / 112])
        }
    }

    @Test("the CLI draws overlays of 1×4500 and 4500×1 images at the documented size", arguments: [(1, 4500), (4500, 1)])
    func cliDegenerateOverlay(width: Int, height: Int) throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // A dark line with a bright stretch, so that the map has something to look at.
        var image = Self.pattern(width: width, height: height)
        image = RGBImage(
            width: width, height: height,
            trustedPixels: image.pixels.enumerated().map { i, v in i / 3 >= 1500 && i / 3 < 3000 ? 200 &+ v / 8 : v / 8 })
        let input = directory.appendingPathComponent("line.png").path
        try PNGEncoder.write(image, to: input)
        let out = directory.appendingPathComponent("overlay.png").path
        let heads = directory.appendingPathComponent("heads.png").path
        let outcome = try CLI.run([input, "--overlay", out, "--overlay-heads", heads])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let overlay = try PNGDecoder.read(out)
        // Not enlarged: ×2 would make the long side 9000 > 8192.
        #expect(overlay.width == width && overlay.height == height)
        #expect(Overlay.size(width: width, height: height) == (width, height))
        // The same pixels as the library draws with the CLI's defaults (rollout, inferno, alpha 0.5).
        let classifier = try Classifier(modelPath: DefaultModelTests.modelPath)
        let maps = try #require(classifier.classify([image], attention: true)[0].attention)
        let expected = Overlay.render(
            image: image, map: try maps.rollout(), gridHeight: maps.gridHeight, gridWidth: maps.gridWidth,
            preprocessing: classifier.info.preprocessing)
        #expect(overlay == expected)
        // Heat reaches the image: the overlay is not the image blended with the colormap's zero colour everywhere.
        let zero = Colormap.inferno.color(0)
        let heated = (0..<(width * height)).filter { i in
            let p = image.pixels[(i * 3)..<(i * 3 + 3)].map { $0 }
            return overlay.pixels[i * 3] != Overlay.blend(p[0], zero.0, 0.5)
        }
        #expect(!heated.isEmpty)
        // 4 heads → 2×2 tiles of at most 4094 px a side, 4 px apart: the grid is within 8192 px a side too.
        let grid = try PNGDecoder.read(heads)
        let tile = Overlay.size(width: width, height: height, budget: .standard.tiles(count: 4, columns: 2, gap: 4))
        #expect(grid.width == 2 * tile.width + 4 && grid.height == 2 * tile.height + 4)
        #expect(max(grid.width, grid.height) == 8192 && min(grid.width, grid.height) == 6)
    }
}
