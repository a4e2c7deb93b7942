import ArgumentParser
import Foundation
import ViTKit

/// Options shared by every subcommand that loads a model.
struct ModelArguments: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Model: a folder with model.safetensors + config.json (timm or Hugging Face), a .safetensors file with config.json beside it, or a Hugging Face Hub model ORG/NAME[@REVISION] (also hf-hub:ORG/NAME).",
            discussion: """
                Default: the Fashion-MNIST ViT in the repository's weights/ folder (or $VITCLASSIFY_MODEL, a path or a Hub id).
                Hub models are read from the Hugging Face cache that timm and transformers share ($HF_HUB_CACHE, else \
                $HF_HOME/hub, else ~/.cache/huggingface/hub) and downloaded into it when missing, from $HF_ENDPOINT \
                (default https://huggingface.co) with $HF_TOKEN if set; HF_HUB_OFFLINE=1 never downloads.
                """,
            valueName: "model"))
    var model: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Run at this input size (pixels, square), resampling position embeddings as the checkpoint's library does.",
            valueName: "S"))
    var imageSize: Int?

    @Option(name: .long, help: ArgumentHelp("Compute threads (default: all cores).", valueName: "N"))
    var threads: Int?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Arithmetic of the linear layers: fp32, bf16 or int8.",
            discussion: """
                fp32 (default): every result as before. bf16: weights and activations rounded to bfloat16, fp32 \
                accumulation. int8: per-channel INT8 weights, per-token dynamic INT8 activations, INT32 accumulation; \
                patch embedding and head stay fp32 (on AVX2 CPUs without VNNI INT8 weights and activations have 7 bits, \
                which keeps vpmaddubsw's 16-bit sums exact). LayerNorm, softmax and the attention products stay fp32.
                """,
            valueName: "p"))
    var precision: Precision = .fp32

    func validate() throws {
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
        if let imageSize, imageSize < 1 || imageSize > 16384 { throw ValidationError("--image-size must be between 1 and 16384") }
    }

    /// Loads the model, with `--threads` compute threads.
    func load() throws -> Classifier {
        try Classifier(modelPath: try resolvedPath(), imageSize: imageSize, threads: threads, precision: precision)
    }

    /// The model's folder or file: `--model` (a path, or a Hub id fetched into the Hugging Face cache), else the
    /// default model.
    func resolvedPath() throws -> String {
        if let model { return try Self.resolve(model) }
        if let value = ProcessInfo.processInfo.environment["VITCLASSIFY_MODEL"], !value.isEmpty,
            !FileManager.default.fileExists(atPath: value), HubModelID.looksLikeID(value)
        {
            return try Self.resolve(value)
        }
        if let path = DefaultModel.locate() { return path }
        throw ViTError.modelNotFound(
            path: DefaultModel.relativePath,
            reason: "the default model is not where it should be (looked in \(DefaultModel.candidates.joined(separator: ", "))); "
                + "pass --model PATH with a folder holding model.safetensors and config.json")
    }
}

extension ModelArguments {
    /// A path as it is; a Hub id (`ORG/NAME[@REVISION]`, `hf-hub:ORG/NAME`) that is not an existing path becomes the
    /// snapshot folder in the Hugging Face cache, downloaded if needed.
    static func resolve(_ model: String) throws -> String {
        guard !FileManager.default.fileExists(atPath: model), HubModelID.looksLikeID(model) else { return model }
        let id: HubModelID
        do {
            id = try HubModelID(parsing: model)
        } catch ViTError.invalidArgument(let reason) {
            throw ViTError.modelNotFound(path: model, reason: "no such file or folder, and \(reason)")
        }
        let progress = DownloadProgress()
        return try HubClient(settings: HubSettings(), events: { progress.handle($0) }).snapshot(for: id)
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

extension Precision: ExpressibleByArgument {}
