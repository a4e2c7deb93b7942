import Foundation
import Testing

@testable import ViTKit

/// The committed reference fixtures (`tools/make_fixtures.py`): PNGs, checkpoints and reference outputs produced by
/// Pillow, timm, Hugging Face transformers and PyTorch.
enum Fixtures {
    static let resources: URL = {
        // `.copy("Resources")` puts the folder inside the bundle; on Linux resourceURL may already point at it.
        let base = Bundle.module.resourceURL!
        let nested = base.appendingPathComponent("Resources")
        return FileManager.default.fileExists(atPath: nested.appendingPathComponent("fixtures").path) ? nested : base
    }()
    static let root: URL = resources.appendingPathComponent("fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    struct Image: Sendable {
        let name: String
        let file: String
        let hasAlpha: Bool
        let width: Int
        let height: Int
    }

    struct Resized: Sendable {
        let file: String
        let imageSize: Int
        let cases: [String]
    }

    struct Model: Sendable, CustomTestStringConvertible {
        let name: String
        let dir: String
        let format: String
        let cases: [String]
        let reference: String
        let numClasses: Int
        let prefixTokens: Int
        let resized: Resized?
        var testDescription: String { name }
    }

    nonisolated(unsafe) static let manifest: [String: Any] = {
        let data = try! Data(contentsOf: root.appendingPathComponent("manifest.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static let images: [Image] = (manifest["images"] as! [[String: Any]]).map {
        Image(
            name: $0["name"] as! String, file: path($0["file"] as! String), hasAlpha: $0["has_alpha"] as! Bool,
            width: $0["width"] as! Int, height: $0["height"] as! Int)
    }

    static let models: [Model] = (manifest["models"] as! [[String: Any]]).map { m in
        let resized = (m["resized"] as? [String: Any]).map {
            Resized(file: path($0["file"] as! String), imageSize: $0["image_size"] as! Int, cases: $0["cases"] as! [String])
        }
        return Model(
            name: m["name"] as! String, dir: path(m["dir"] as! String), format: m["format"] as! String,
            cases: m["cases"] as! [String], reference: path(m["reference"] as! String),
            numClasses: m["num_classes"] as! Int, prefixTokens: m["prefix_tokens"] as! Int, resized: resized)
    }

    static func image(_ name: String) -> Image { images.first { $0.name == name }! }

    static let decoded = try! SafeTensorsFile(path: path("decoded.safetensors"))

    /// The reference RGB samples of a fixture image.
    static func referenceImage(_ name: String, key: String? = nil) throws -> RGBImage {
        let info = decoded.tensors[key ?? name]!
        return RGBImage(width: info.shape[1], height: info.shape[0], trustedPixels: try decoded.bytes(key ?? name))
    }
}

/// The largest absolute difference between two equally long arrays.
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Indices of the `k` largest values, largest first.
func topIndices(_ values: [Float], _ k: Int) -> [Int] {
    Array(values.indices.sorted { values[$0] > values[$1] }.prefix(k))
}

/// The `vitclassify` binary built beside the tests, run as a subprocess.
enum CLI {
    static var binary: URL { Bundle.module.bundleURL.deletingLastPathComponent().appendingPathComponent("vitclassify") }

    struct Outcome {
        let status: Int32
        /// `.uncaughtSignal` when a signal ended the process (then `status` is the signal's number).
        let reason: Process.TerminationReason
        let stdout: Data
        let stderr: String
    }

    /// Runs the binary with `arguments` (in `directory` if given, with `environment` added to this process's, with
    /// `standardInput` as its standard input if given), calls
    /// `whileRunning` once it has started, and returns its exit status and output. The output goes through files, so
    /// neither stream can block the other.
    static func run(
        _ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:],
        standardInput: String? = nil, whileRunning: ((Process) throws -> Void)? = nil
    ) throws -> Outcome {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("vit-cli-\(UUID().uuidString)")
        let outURL = base.appendingPathExtension("out"), errURL = base.appendingPathExtension("err")
        defer { for url in [outURL, errURL] { try? FileManager.default.removeItem(at: url) } }
        for url in [outURL, errURL] { try #require(FileManager.default.createFile(atPath: url.path, contents: nil)) }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        let input = standardInput.map { _ in Pipe() }
        if let input { process.standardInput = input }
        try process.run()
        if let input, let standardInput {
            input.fileHandleForWriting.write(Data(standardInput.utf8))
            try input.fileHandleForWriting.close()
        }
        try whileRunning?(process)
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus, reason: process.terminationReason, stdout: try Data(contentsOf: outURL),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}
