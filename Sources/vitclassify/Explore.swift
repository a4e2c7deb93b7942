import ArgumentParser
import Foundation
import ViTKit

/// `vitclassify explore IMAGE --output page.html`: one self-contained HTML page to click through an image's attention.
struct Explore: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an interactive HTML page of one image's attention (every layer, head and query token).",
        discussion: """
            The page is one file (CSS, JavaScript, images and data inline; no network): open it in a browser from
            disk or send it by e-mail. It shows the image, the top-K predictions and the attention drawn over the
            image as --overlay draws it. Choose a layer (or rollout) and a head (or mean / max / min); hover over a
            patch to see where its query looks (softmax(q·Kᵀ/√d) of that token, for the chosen layer and head), click
            to pin it; the class token and registers have buttons. Arrow keys: up/down layer, left/right head.
            Every layer × head × query × key value is stored, quantised per row to 8 bits (--bits 16 for twice the
            size and no visible difference) and deflated. With JavaScript off, the page shows the image, the
            predictions and a static overlay of the first view.
            """)

    @Argument(help: ArgumentHelp("The PNG or JPEG image.", valueName: "image"))
    var image: String

    @OptionGroup var modelArguments: ModelArguments
    @OptionGroup var imageArguments: ImageArguments

    @Option(name: .shortAndLong, help: ArgumentHelp("The HTML file to write.", valueName: "page.html"))
    var output: String

    @Option(name: .long, help: ArgumentHelp("How many labels to show (0: every class).", valueName: "K"))
    var topK: Int = 5

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The first view: rollout (all layers), last (last layer) or layer:L (0-based).", valueName: "rollout|last|layer:L"))
    var attentionMap: String = "rollout"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The first view's heads: mean, max, min or a head index (for rollout: the fusion, mean, max or min).",
            valueName: "mean|max|min|H"))
    var head: String = "mean"

    @Option(
        name: .long,
        help: ArgumentHelp("Rollout: zero this fraction of the smallest attention weights per layer (0 ≤ R < 1).", valueName: "R"))
    var discardRatio: Double = 0

    @Option(name: .long, help: "The first view's colormap (inferno or viridis; the page switches between them).")
    var colormap: Colormap = .inferno

    @Option(name: .long, help: ArgumentHelp("Opacity of the colormap over the image, 0-1.", valueName: "A"))
    var alpha: Double = 0.5

    @Option(name: .long, help: ArgumentHelp("Bits per stored attention value: 8 or 16.", valueName: "8|16"))
    var bits: Int = 8

    @Flag(name: .long, help: "Replace an existing page.")
    var force = false

    @Flag(
        name: .long,
        help: "Leave out the class-specific explanations (transformer attribution, gradient rollout, Grad-CAM for each of the top-K classes, one backward pass per class).")
    var noExplanations = false

    func validate() throws {
        if topK < 0 { throw ValidationError("--top-k must be 0 (all classes) or more") }
        guard AttentionMapKind(attentionMap) != nil else { throw ValidationError("--attention-map must be rollout, last or layer:L") }
        guard let selection = HeadSelection(head) else { throw ValidationError("--head must be mean, max, min or a head index") }
        if AttentionMapKind(attentionMap) == .rollout, case .head = selection {
            throw ValidationError("--head with rollout is the fusion: mean, max or min")
        }
        guard discardRatio >= 0 && discardRatio < 1 else { throw ValidationError("--discard-ratio must be in [0, 1)") }
        guard colormap == .inferno || colormap == .viridis else { throw ValidationError("--colormap must be inferno or viridis") }
        guard alpha >= 0 && alpha <= 1 else { throw ValidationError("--alpha must be between 0 and 1") }
        guard bits == 8 || bits == 16 else { throw ValidationError("--bits must be 8 or 16") }
    }

    func run() throws {
        let classifier = try modelArguments.load()
        let picture = try ImageDecoder.read(image, options: imageArguments.options)
        let result = classifier.classify([picture], topK: topK, attention: true)[0]
        guard let maps = result.attention else { throw ViTError.invalidArgument("the model returned no attention for \(image)") }
        var explanations: [Explanation] = []
        if !noExplanations, let explainer = try? Explainer(classifier: classifier) {
            // Precomputed for the top-K classes (at most 5), the patch-grid methods that need gradients.
            let targets = Array(result.predictions.prefix(5).map(\.index))
            explanations = try explainer.explain(
                picture, methods: [.transformerAttribution, .gradRollout, .gradcam], targets: targets, topK: topK
            ).explanations
        }
        let html = try Self.page(
            imageName: URL(fileURLWithPath: image).lastPathComponent, image: picture, classifier: classifier,
            predictions: result.predictions, maps: maps, layer: AttentionMapKind(attentionMap)!, head: HeadSelection(head)!,
            discardRatio: discardRatio, colormap: colormap, alpha: alpha, bits: bits, explanations: explanations)
        try FileIO.writeText(html, to: output, overwrite: force, protected: [image])
    }

    /// The page of one classified image (also used by `batch`/`eval --explore-pages`).
    static func page(
        imageName: String, image: RGBImage, classifier: Classifier, predictions: [Prediction], maps: AttentionMaps,
        layer: AttentionMapKind = .rollout, head: HeadSelection = .mean, discardRatio: Double = 0,
        colormap: Colormap = .inferno, alpha: Double = 0.5, bits: Int = 8, explanations: [Explanation] = []
    ) throws -> String {
        let a = classifier.model.architecture
        var content = ExplorePage.Content(
            imageName: imageName, modelName: classifier.info.name, image: image, predictions: predictions,
            preprocessing: classifier.info.preprocessing,
            architecture: (a.classToken, a.distillationToken, a.registerTokens))
        if case .layer(let l) = layer, l >= maps.layers {
            throw ViTError.invalidArgument("layer \(l) does not exist (the model has layers 0-\(maps.layers - 1))")
        }
        if case .head(let h) = head, h >= maps.heads {
            throw ViTError.invalidArgument("head \(h) does not exist (the model has heads 0-\(maps.heads - 1))")
        }
        content.layer = layer
        content.head = head
        content.colormap = colormap
        content.alpha = alpha
        content.explanations = explanations.map { (method: $0.method.rawValue, target: $0.target, label: $0.label, values: $0.values) }
        let block = try ExplorePage.AttentionBlock(maps, bits: bits, discardRatio: discardRatio)
        return try ExplorePage.html(content, maps: maps, block: block)
    }
}
