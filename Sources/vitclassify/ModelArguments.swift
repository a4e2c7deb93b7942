import ArgumentParser
import Foundation
import ViTKit

/// Options shared by every subcommand that loads a model.
struct ModelArguments: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Model: a folder with model.safetensors + config.json (timm or Hugging Face), or a .safetensors file with config.json beside it.",
            discussion: "Default: the Fashion-MNIST ViT in the repository's weights/ folder (or $VITCLASSIFY_MODEL).",
            valueName: "path"))
    var model: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Run at this input size (pixels, square), resampling position embeddings as the checkpoint's library does.",
            valueName: "S"))
    var imageSize: Int?

    @Option(name: .long, help: ArgumentHelp("Compute threads (default: all cores).", valueName: "N"))
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
        if let imageSize, imageSize < 1 || imageSize > 16384 { throw ValidationError("--image-size must be between 1 and 16384") }
    }

    /// Loads the model, with `--threads` compute threads.
    func load() throws -> Classifier {
        try Classifier(modelPath: try resolvedPath(), imageSize: imageSize, threads: threads)
    }

    func resolvedPath() throws -> String {
        if let model { return model }
        if let path = DefaultModel.locate() { return path }
        throw ViTError.modelNotFound(
            path: DefaultModel.relativePath,
            reason: "the default model is not where it should be (looked in \(DefaultModel.candidates.joined(separator: ", "))); "
                + "pass --model PATH with a folder holding model.safetensors and config.json")
    }
}

/// Where the default model lives: `weights/fashion-mnist-vit` of the repository this binary was built from, or
/// `share/vitclassify/weights/...` next to an installed binary (`<prefix>/bin/vitclassify`).
enum DefaultModel {
    static let relativePath = "weights/fashion-mnist-vit"

    static var candidates: [String] {
        var list: [String] = []
        if let env = ProcessInfo.processInfo.environment["VITCLASSIFY_MODEL"], !env.isEmpty { list.append(env) }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let binDirectory = (Bundle.main.executableURL?.resolvingSymlinksInPath() ?? executable).deletingLastPathComponent()
        list.append(binDirectory.deletingLastPathComponent().appendingPathComponent("share/vitclassify/\(relativePath)").path)
        // This source file is <repo>/Sources/vitclassify/ModelArguments.swift.
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        list.append(repository.appendingPathComponent(relativePath).path)
        return list
    }

    static func locate() -> String? {
        candidates.first { FileManager.default.fileExists(atPath: $0 + "/config.json") }
    }
}
