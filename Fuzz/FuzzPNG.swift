// libFuzzer target: PNG decoding (png_io.c over libpng, and PNGCodec) through PNGDecoder.decode(_:name:options:).
// Input: a PNG file. Odd-sized inputs are decoded with --background (alpha compositing), even-sized ones without.
// The pixel limit is 4 megapixels here so that the fuzzer does not spend its time inflating huge valid images.
// Build and run: see Fuzz/README.md.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let options = ImageReadOptions(maxPixels: 1 << 22, background: size & 1 == 1 ? (10, 20, 30) : nil)
    do {
        let image = try PNGDecoder.decode(Data(bytes: data, count: size), name: "fuzz.png", options: options)
        precondition(image.width > 0 && image.height > 0 && image.width * image.height <= options.maxPixels)
        precondition(image.pixels.count == image.width * image.height * 3)
    } catch let error as ViTError {
        checkOneLine(error)
    } catch {
        fatalError("not a ViTError: \(error)")
    }
    return 0
}
