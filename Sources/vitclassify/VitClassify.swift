import ArgumentParser
import Foundation
import ViTKit

@main
struct VitClassify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vitclassify",
        abstract: "Classify PNG images with Vision Transformer checkpoints (timm, Hugging Face), without Python.",
        discussion: """
            Without a subcommand, classifies the images given (see 'vitclassify classify --help').
            Models: a folder with model.safetensors and config.json from timm or Hugging Face (ViT, DeiT), or a
            Hugging Face Hub model ORG/NAME[@REVISION] (hf-hub:ORG/NAME), kept in the cache timm and transformers share.
            Without --model, the default Fashion-MNIST model shipped in weights/ is used.
            """,
        version: "0.1.0",
        subcommands: [Classify.self, Batch.self, Eval.self, Explore.self, Inspect.self, Bench.self],
        defaultSubcommand: Classify.self)

    /// Runs the command; usage errors exit with status 1 (not argument-parser's 64), as documented.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                printError(fullMessage(for: error))
                Foundation.exit(1)
            }
            exit(withError: error)
        }
    }
}

/// Writes a line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
