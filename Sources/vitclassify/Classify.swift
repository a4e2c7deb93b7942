import ArgumentParser
import Foundation
import ViTKit

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// Options for reading image files (PNG or JPEG, told apart by their signature).
struct ImageArguments: ParsableArguments {
    @Option(
        name: .long, help: ArgumentHelp("Refuse images with more pixels than this (checked before decoding).", valueName: "N"))
    var maxPixels: Int = ImageReadOptions.defaultMaxPixels

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Composite transparent pixels over this colour instead of dropping alpha (the reference pipelines drop it).",
            valueName: "R,G,B"))
    var background: String?

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Classify the stored pixels, ignoring the EXIF orientation (as timm's inference.py does; by default the image is turned as viewers show it, as Hugging Face's load_image does)."
        ))
    var ignoreExifOrientation = false

    func validate() throws {
        guard maxPixels >= 1 && maxPixels <= 1 << 34 else { throw ValidationError("--max-pixels must be between 1 and 2^34") }
        _ = try parsedBackground()
    }

    func parsedBackground() throws -> (UInt8, UInt8, UInt8)? {
        guard let background else { return nil }
        let parts = background.split(separator: ",").map { UInt8($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 3, let r = parts[0], let g = parts[1], let b = parts[2] else {
            throw ValidationError("--background must be R,G,B with each value 0-255 (e.g. 255,255,255)")
        }
        return (r, g, b)
    }

    var options: ImageReadOptions {
        ImageReadOptions(
            maxPixels: maxPixels, background: try? parsedBackground(), applyExifOrientation: !ignoreExifOrientation)
    }
}

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify PNG or JPEG images (the default subcommand).",
        discussion: """
            Prints the top-K labels of each image with their probabilities.
            --format json prints one JSON object per image per line:
              {"image": PATH, "model": NAME, "predictions": [{"rank": 1, "index": I, "label": L, "probability": P, "logit": Z}, ...]}
            Exit status: 0 if every image was classified; 2 if some images could not be read (each error is printed
            on stderr, the others are still classified); 1 for usage or model errors.
            """)

    @Argument(help: ArgumentHelp("PNG or JPEG images to classify (format read from the file, not its name).", valueName: "image"))
    var images: [String]

    @OptionGroup var modelArguments: ModelArguments
    @OptionGroup var imageArguments: ImageArguments

    @Option(name: .long, help: ArgumentHelp("How many labels to show per image (0: every class).", valueName: "K"))
    var topK: Int = 5

    @Option(name: .long, help: "Output format: text (an aligned table per image) or json (one object per line).")
    var format: OutputFormat = .text

    @OptionGroup(title: "Attention") var attentionArguments: AttentionArguments

    @OptionGroup(title: "Explanations") var explanationArguments: ExplanationArguments

    @Option(
        name: .long,
        help: ArgumentHelp("Write the attention map drawn over the image to this PNG (one image only).", valueName: "out.png"))
    var overlay: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Write one overlay per head of the chosen layer (last layer for rollout), tiled in head order left to right, top to bottom. With --explain: the first method's per-head maps (attention: each head's attention; transformer-attribution and grad-rollout: each head's gradient-weighted attention (∇A⊙A)⁺ for the target class).",
            valueName: "out.png"))
    var overlayHeads: String?

    @Flag(name: .long, help: "Replace existing overlay files.")
    var force = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image (PNG or JPEG)") }
        if topK < 0 { throw ValidationError("--top-k must be 0 (all classes) or more") }
        if (overlay != nil || overlayHeads != nil) && images.count != 1 {
            throw ValidationError(
                "--overlay and --overlay-heads take one image (use 'vitclassify batch --overlays DIR' for many)")
        }
        if overlayHeads != nil, let method = explanationArguments.methods.first,
            ![.attention, .transformerAttribution, .gradRollout].contains(method)
        {
            throw ValidationError(
                "--overlay-heads: \(method.rawValue) has no per-head maps (they exist for attention, transformer-attribution and grad-rollout); use --overlay")
        }
        if let overlay, let overlayHeads, overlay == overlayHeads {
            throw ValidationError("--overlay and --overlay-heads name the same file")
        }
    }

    func run() throws {
        let classifier = try modelArguments.load()
        let explainer = explanationArguments.requested ? try Explainer(classifier: classifier) : nil
        let targets = try explainer.map(explanationArguments.targets) ?? nil
        var failures = 0
        var first = true
        for path in images {
            let image: RGBImage
            do {
                image = try ImageDecoder.read(path, options: imageArguments.options)
            } catch {
                printError("error: \(error.localizedDescription)")
                failures += 1
                continue
            }
            let wantsAttention = attentionArguments.attention || overlay != nil || overlayHeads != nil
            var explanations: [Explanation] = []
            let result: Classification
            if let explainer {  // one forward pass with the trace, one backward pass per target
                let explained = try explainer.explain(
                    image, methods: explanationArguments.methods, targets: targets, topK: topK,
                    settings: explanationArguments.settings(attentionArguments))
                result = explained.classification
                explanations = explained.explanations
            } else {
                result = classifier.classify([image], topK: topK, attention: wantsAttention)[0]
            }
            switch format {
            case .json:
                var extra: [(String, JSONValue)] = []
                if attentionArguments.attention, let maps = result.attention {
                    extra.append(("attention", try attentionArguments.json(maps)))
                }
                if explainer != nil { extra.append(("explanations", ExplanationArguments.json(explanations))) }
                print(
                    PredictionRendering.json(
                        image: path, model: classifier.info.name, predictions: result.predictions, extra: extra
                    ).rendered)
            case .text:
                if !first { print("") }
                print(PredictionRendering.table(image: path, model: classifier.info.name, predictions: result.predictions))
                if attentionArguments.attention, let maps = result.attention {
                    print(
                        PredictionRendering.grid(
                            try attentionArguments.selectedMap(maps), height: maps.gridHeight, width: maps.gridWidth,
                            title: "attention (\(attentionArguments.mapKind))"))
                }
                for e in explanations {
                    print(ExplanationArguments.text(e, patchSize: classifier.model.architecture.patchSize))
                }
            }
            first = false
            if let maps = result.attention {
                if let overlay {
                    let drawn =
                        try explanations.first.map {
                            ExplanationArguments.overlay(image, $0, classifier: classifier, attention: attentionArguments)
                        } ?? attentionArguments.overlay(image, maps: maps, classifier: classifier)
                    try PNGEncoder.write(drawn, to: overlay, overwrite: force, protected: images)
                }
                if let overlayHeads {
                    let heads = try explanations.first?.heads ?? attentionArguments.headMaps(maps)
                    try PNGEncoder.write(
                        attentionArguments.headsOverlay(
                            image, heads: heads, gridHeight: maps.gridHeight, gridWidth: maps.gridWidth, classifier: classifier),
                        to: overlayHeads, overwrite: force, protected: images)
                }
            }
        }
        if failures > 0 { throw ExitCode(2) }
    }
}
