// libFuzzer target: the configuration readers. JSONObject, then the timm or Hugging Face dialect reading
// config.json (and preprocessor_config.json) against a real checkpoint, the architecture checks, and the weights
// built from the tensors (shapes checked against what the configuration implies).
//
// Input: one selector byte, then config.json, optionally followed by a NUL byte and preprocessor_config.json.
// The selector picks the checkpoint whose tensors the configuration is read against (byte % count, in the order
// of `checkpoints` below: the fixture models, then the tiny controls of the broken corpus).
// Build and run: see Fuzz/README.md.
import Foundation

/// The repository root: from $VIT_FUZZ_ROOT, else from this file's location (<root>/Fuzz/FuzzConfig.swift).
private let root: String =
    ProcessInfo.processInfo.environment["VIT_FUZZ_ROOT"]
    ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path

/// The checkpoints, loaded once: their files (config paths unused: the config comes from the input) and tensors.
private let checkpoints: [(files: Checkpoint.Files, safetensors: SafeTensorsFile)] = {
    let fixtures = root + "/Tests/ViTKitTests/Resources/fixtures/models"
    let broken = root + "/Tests/ViTKitTests/Resources/broken/checkpoints"
    let folders =
        ((try? FileManager.default.contentsOfDirectory(atPath: fixtures)) ?? []).sorted().map { fixtures + "/" + $0 }
        + ["valid_timm", "valid_hf"].map { broken + "/" + $0 }
    let loaded = folders.map { folder -> (Checkpoint.Files, SafeTensorsFile) in
        let files = try! Checkpoint.Files(path: folder)
        return (files, try! SafeTensorsFile(path: files.weights))
    }
    precondition(loaded.count == 12, "expected 12 checkpoints under \(root), found \(loaded.count)")
    return loaded
}()

private let testImage = RGBImage(width: 8, height: 8, trustedPixels: (0..<192).map { UInt8(($0 * 37) & 255) })

/// Where the preprocessor config of the current input is written (the Hugging Face dialect reads it by path).
private let preprocessorPath = NSTemporaryDirectory() + "/vit-fuzz-preprocessor-\(getpid()).json"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    var (files, safetensors) = checkpoints[Int(input[0]) % checkpoints.count]
    let rest = input[1...]
    let separator = rest.firstIndex(of: 0)
    let configBytes = Data(rest[..<(separator ?? rest.endIndex)])
    files.preprocessorConfig = nil
    if let separator {
        try! Data(rest[(separator + 1)...]).write(to: URL(fileURLWithPath: preprocessorPath))
        files.preprocessorConfig = preprocessorPath
    }
    do {
        let config = try JSONObject(data: configBytes, path: files.config)
        let (info, model) = try Checkpoint.load(files: files, config: config, safetensors: safetensors)
        // One 8x8 image through the configured preprocessing and the network (as Classifier.logits does).
        let a = info.architecture
        let input = info.preprocessing.apply(to: testImage)
        precondition(input.count == a.channels * a.imageHeight * a.imageWidth, "preprocessing output size")  // as Classifier
        var logits = [Float](repeating: 0, count: a.numClasses)
        input.withUnsafeBufferPointer { pixels in
            logits.withUnsafeMutableBufferPointer {
                model.forward(
                    pixels: pixels.baseAddress!, images: 1, logits: $0.baseAddress!,
                    workspace: Workspace(architecture: a, capacity: 1))
            }
        }
    } catch let error as ViTError {
        checkOneLine(error)
    } catch {
        fatalError("not a ViTError: \(error)")
    }
    return 0
}
