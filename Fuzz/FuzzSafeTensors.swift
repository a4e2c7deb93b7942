// libFuzzer target: the safetensors container (length prefix, JSON header, every entry's dtype/shape/offsets,
// overlap check) and the conversion of every tensor it accepts to Float. Input: a whole .safetensors file.
// Build and run: see Fuzz/README.md.
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    do {
        let (dataStart, tensors, _) = try SafeTensorsFile.parse(bytes, path: "fuzz.safetensors")
        for info in tensors.values.sorted(by: { $0.name < $1.name }) {
            // parse() promised that every range lies inside the file: slicing traps otherwise.
            let source = UnsafeRawBufferPointer(rebasing: bytes[(dataStart + info.begin)..<(dataStart + info.end)])
            let values = SafeTensorsFile.floats(info, from: source)
            precondition(values.count == info.elementCount)
        }
    } catch let error as ViTError {
        checkOneLine(error)
    } catch {
        fatalError("not a ViTError: \(error)")
    }
    return 0
}
