// libFuzzer target: image decoding through ImageDecoder.decode(_:name:options:): the signature sniff, jpeg_io.c over
// libjpeg-turbo (and JPEGCodec), the EXIF/XMP orientation parser and the orientation transpose. PNG-signed inputs go
// to the PNG decoder (the png target's business, reached here too).
// Input: a JPEG file. Even-sized inputs are turned by their EXIF orientation, odd-sized ones are not.
// The orientation parser also reads the raw input as an EXIF block, so mutations reach the TIFF reader directly.
// The pixel limit is 4 megapixels here so that the fuzzer does not spend its time decoding huge valid images.
// Build and run: see Fuzz/README.md.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJPEG(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    let options = ImageReadOptions(maxPixels: 1 << 22, applyExifOrientation: size & 1 == 0)
    _ = OrientationMetadata.tiffOrientation([UInt8](bytes))
    _ = OrientationMetadata.inJPEG(bytes)
    do {
        let image = try ImageDecoder.decode(bytes, name: "fuzz.jpg", options: options)
        precondition(image.width > 0 && image.height > 0 && image.width * image.height <= options.maxPixels)
        precondition(image.pixels.count == image.width * image.height * 3)
    } catch let error as ViTError {
        checkOneLine(error)
    } catch {
        fatalError("not a ViTError: \(error)")
    }
    return 0
}
