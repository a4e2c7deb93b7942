// libFuzzer target: the overlay encoder path. Overlay.size / render (geometry, heat, resampling, colormap, the pixel
// budget, the heads grid) on random image sizes, preprocessings and attention maps, then PNGCodec.writeRGB
// (png_io.c's writer over libpng) and a decode of what it wrote, which must give the same pixels back.
//
// Input (missing bytes read as 0):
//   0-1   image width  (u16 LE): 1 + v % 4096        2-3  image height: 1 + v % 4096 (then at most 4,096 pixels)
//   4     grid: 1 + low nibble rows, 1 + high nibble columns
//   5     bits 0-1 resize (shorter side + crop, rounding half-even / floor; exact + crop; exact), bits 2-3 colormap,
//         bit 4 the standard budget when its overlay has at most 2^17 pixels (else bytes 10-13), bit 5 draw a heads
//         grid, bit 6 an empty image to the writer
//   6-8   resize size, crop height, crop or resize width (1 + v % 64)
//   9     alpha (v / 255)
//   10-11 budget side (1 + v % 1024)                12-13 budget pixels (1 + v % 4096)
//   14    heads (1 + v % 9)                          15    pixel seed
//   16-23 two u32 sizes for Overlay.size alone (1 + v % (2^31 - 1)), checked without drawing
//   24-   the map, float32 LE bit patterns (NaN, infinities and negatives included), repeated to fill the grid
// The overlays drawn stay under 2^17 pixels so that runs stay fast (the standard budget's larger sizes are checked by
// Overlay.size alone, and by OverlayWriterTests).
// Build and run: see Fuzz/README.md.
import Foundation

/// Where each run's PNG is written (and read back): in memory when /dev/shm exists, since the writer fsyncs.
private let outputPath =
    (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory())
    + "/vit-fuzz-overlay-\(getpid()).png"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOverlay(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    func byte(_ i: Int) -> Int { i < input.count ? Int(input[i]) : 0 }
    func u16(_ i: Int) -> Int { byte(i) | byte(i + 1) << 8 }
    func u32(_ i: Int) -> Int { u16(i) | u16(i + 2) << 16 }

    let width = 1 + u16(0) % 4096
    let height = min(1 + u16(2) % 4096, max(1, 4096 / width))
    let gridHeight = 1 + byte(4) & 15, gridWidth = 1 + byte(4) >> 4
    let flags = byte(5)
    let resizeSize = 1 + byte(6) % 64, cropHeight = 1 + byte(7) % 64, otherWidth = 1 + byte(8) % 64
    let preprocessing: Preprocessing
    switch flags & 3 {
    case 0, 1:
        preprocessing = Preprocessing(
            resize: .shorterSide(resizeSize), filter: .bilinear, crop: (cropHeight, otherWidth),
            cropRounding: flags & 3 == 0 ? .roundHalfEven : .floor, mean: [0, 0, 0], std: [1, 1, 1])
    case 2:
        preprocessing = Preprocessing(
            resize: .exact(height: resizeSize, width: otherWidth), filter: .bilinear, crop: (cropHeight, cropHeight),
            cropRounding: .floor, mean: [0, 0, 0], std: [1, 1, 1])
    default:
        preprocessing = Preprocessing(
            resize: .exact(height: resizeSize, width: otherWidth), filter: .bilinear, crop: nil, cropRounding: .floor,
            mean: [0, 0, 0], std: [1, 1, 1])
    }
    let colormap = Colormap.allCases[(flags >> 2) & 3]
    let alpha = Float(byte(9)) / 255
    let small = Overlay.Budget(maxSide: 1 + u16(10) % 1024, maxPixels: 1 + u16(12) % 4096)
    let standard = Overlay.size(width: width, height: height)
    let budget = flags & 16 != 0 && standard.width * standard.height <= 1 << 17 ? Overlay.Budget.standard : small
    let heads = 1 + byte(14) % 9, seed = byte(15) | 1

    // Sizes alone, up to PNG's largest: within the budget, at least 1 a side, an integer enlargement when the
    // original fits, a reduction otherwise.
    for (w, h) in [(1 + u32(16) % 0x7fff_ffff, 1 + u32(20) % 0x7fff_ffff), (width, height)] {
        let s = Overlay.size(width: w, height: h, budget: budget), k = Overlay.scale(width: w, height: h, budget: budget)
        precondition(s.width >= 1 && s.height >= 1 && budget.allows(width: s.width, height: s.height), "\(w)×\(h) → \(s)")
        if budget.allows(width: w, height: h) {
            precondition(s.width == w * k && s.height == h * k, "\(w)×\(h) → \(s), k \(k)")
        } else {
            precondition(k == 1 && s.width <= w && s.height <= h, "\(w)×\(h) → \(s)")
        }
    }

    let pixels = (0..<(width * height * 3)).map { UInt8(truncatingIfNeeded: ($0 &* seed) >> 3 ^ $0) }
    let image = RGBImage(width: width, height: height, trustedPixels: pixels)
    let cells = gridHeight * gridWidth, mapBytes = max(0, input.count - 24) / 4
    let map: [Float] = (0..<cells).map { i in
        guard mapBytes > 0 else { return Float(i) }
        let o = 24 + (i % mapBytes) * 4
        return Float(bitPattern: UInt32(byte(o) | byte(o + 1) << 8 | byte(o + 2) << 16 | byte(o + 3) << 24))
    }

    let overlay = Overlay.render(
        image: image, map: map, gridHeight: gridHeight, gridWidth: gridWidth, preprocessing: preprocessing,
        colormap: colormap, alpha: alpha, budget: budget)
    let expected = Overlay.size(width: width, height: height, budget: budget)
    precondition(overlay.width == expected.width && overlay.height == expected.height, "render size")
    precondition(overlay.pixels.count == overlay.width * overlay.height * 3)
    if expected.width * expected.height <= 16384 {
        let heat = Overlay.heat(
            map: map, gridHeight: gridHeight, gridWidth: gridWidth, image: (width, height), preprocessing: preprocessing,
            size: expected)
        precondition(heat.count == overlay.width * overlay.height && heat.allSatisfy { !($0 < 0) && !($0 > 1) }, "heat")
    }

    var written = overlay
    if flags & 32 != 0 {
        let columns = Int(Double(heads).squareRoot().rounded(.up)), rows = (heads + columns - 1) / columns
        let tile = budget.tiles(count: heads, columns: columns, gap: 4)
        let tiles = (0..<heads).map { h in
            Overlay.render(
                image: image, map: map.map { $0 * Float(h + 1) }, gridHeight: gridHeight, gridWidth: gridWidth,
                preprocessing: preprocessing, colormap: colormap, alpha: alpha, budget: tile)
        }
        written = Overlay.grid(tiles, columns: columns, gap: 4)
        let t = Overlay.size(width: width, height: height, budget: tile)
        precondition(written.width == columns * t.width + (columns - 1) * 4 && written.height == rows * t.height + (rows - 1) * 4)
        // The grid fits the budget unless the tiles' share was clamped to one pixel.
        precondition(
            budget.allows(width: written.width, height: written.height) || tile.maxSide == 1 || tile.maxPixels == 1,
            "grid \(written.width)×\(written.height) over \(budget)")
    }

    do {
        try PNGCodec.writeRGB(written, to: outputPath, displayName: "fuzz.png")
        let back = try PNGDecoder.decode(
            try Data(contentsOf: URL(fileURLWithPath: outputPath)), name: "fuzz.png", options: ImageReadOptions())
        precondition(back == written, "the PNG does not hold the pixels written")
    } catch let error as ViTError {
        fatalError("a valid overlay was not written: \(error.errorDescription ?? "")")
    } catch {
        fatalError("not a ViTError: \(error)")
    }

    if flags & 64 != 0 {
        do {
            try PNGCodec.writeRGB(RGBImage(width: 0, height: 0, trustedPixels: []), to: outputPath, displayName: "fuzz.png")
            fatalError("an empty image was written")
        } catch let error as ViTError {
            checkOneLine(error)
        } catch {
            fatalError("not a ViTError: \(error)")
        }
    }
    return 0
}
