import ArgumentParser
import Foundation
import ViTKit

extension Colormap: ExpressibleByArgument {}

/// Options for attention maps and overlays, shared by `classify` and `batch`.
struct AttentionArguments: ParsableArguments {
    @Flag(
        name: .long,
        help:
            "Add the attention to JSON output: {\"grid\", \"prefix_tokens\", \"cls\" (every layer and head), \"rollout\", \"map\"}."
    )
    var attention = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The map to draw: rollout (all layers), last (last layer) or layer:L (0-based).", valueName: "rollout|last|layer:L"))
    var attentionMap: String = "rollout"

    @Option(
        name: .long,
        help: ArgumentHelp("Heads of a single-layer map: mean, max, min or a head index.", valueName: "mean|max|min|H"))
    var head: String = "mean"

    @Option(name: .long, help: ArgumentHelp("How rollout fuses the heads of each layer.", valueName: "mean|max|min"))
    var headFusion: String = "mean"

    @Option(
        name: .long,
        help: ArgumentHelp("Rollout: zero this fraction of the smallest attention weights per layer (0 ≤ R < 1).", valueName: "R")
    )
    var discardRatio: Double = 0

    @Option(name: .long, help: "Overlay colormap.")
    var colormap: Colormap = .inferno

    @Option(name: .long, help: ArgumentHelp("Overlay opacity of the colormap, 0-1.", valueName: "A"))
    var alpha: Double = 0.5

    var mapKind: AttentionMapKind { AttentionMapKind(attentionMap)! }
    var headSelection: HeadSelection { HeadSelection(head)! }
    var fusion: HeadSelection { HeadSelection(headFusion)! }

    func validate() throws {
        guard AttentionMapKind(attentionMap) != nil else {
            throw ValidationError("--attention-map must be rollout, last or layer:L")
        }
        guard HeadSelection(head) != nil else { throw ValidationError("--head must be mean, max, min or a head index") }
        guard ["mean", "max", "min"].contains(headFusion) else { throw ValidationError("--head-fusion must be mean, max or min") }
        guard discardRatio >= 0 && discardRatio < 1 else { throw ValidationError("--discard-ratio must be in [0, 1)") }
        guard alpha >= 0 && alpha <= 1 else { throw ValidationError("--alpha must be between 0 and 1") }
    }

    /// The selected map for one image.
    func selectedMap(_ maps: AttentionMaps) throws -> [Float] {
        try maps.map(mapKind, heads: headSelection, fusion: fusion, discardRatio: discardRatio)
    }

    /// The `"attention"` member of an image's JSON object.
    func json(_ maps: AttentionMaps) throws -> JSONValue {
        func floats(_ v: [Float]) -> JSONValue { .array(v.map(JSONValue.float)) }
        return .object([
            ("grid", .array([.int(maps.gridHeight), .int(maps.gridWidth)])),
            ("prefix_tokens", .int(maps.prefixTokens)),
            ("cls", .array(maps.classRows.map { .array($0.map(floats)) })),
            ("rollout", floats(try maps.rollout(fusion: fusion, discardRatio: discardRatio))),
            (
                "map",
                .object([
                    ("kind", .string(mapKind.description)), ("head", .string(mapKind == .rollout ? headFusion : head)),
                    ("values", floats(try selectedMap(maps))),
                ])
            ),
        ])
    }

    /// Draws the selected map over `image`.
    func overlay(_ image: RGBImage, maps: AttentionMaps, classifier: Classifier) throws -> RGBImage {
        Overlay.render(
            image: image, map: try selectedMap(maps), gridHeight: maps.gridHeight, gridWidth: maps.gridWidth,
            preprocessing: classifier.info.preprocessing, colormap: colormap, alpha: Float(alpha))
    }

    /// One overlay per head of the selected layer (the last layer for rollout), tiled in head order, row-major.
    ///
    /// The whole grid fits the overlay budget: each tile gets its share (``Overlay/Budget/tiles(count:columns:gap:)``).
    /// Each head's attention in the chosen layer (the last for rollout).
    func headMaps(_ maps: AttentionMaps) throws -> [[Float]] {
        let layer: Int
        switch mapKind {
        case .layer(let l): layer = l
        case .last, .rollout: layer = maps.layers - 1
        }
        return try (0..<maps.heads).map { try maps.layerMap(layer, heads: .head($0)) }
    }

    /// One overlay per head map, tiled in head order left to right, top to bottom.
    func headsOverlay(_ image: RGBImage, heads: [[Float]], gridHeight: Int, gridWidth: Int, classifier: Classifier) -> RGBImage {
        let columns = Int(Double(heads.count).squareRoot().rounded(.up)), gap = 4
        let budget = Overlay.Budget.standard.tiles(count: heads.count, columns: columns, gap: gap)
        let tiles = heads.map { map in
            Overlay.render(
                image: image, map: map, gridHeight: gridHeight, gridWidth: gridWidth, preprocessing: classifier.info.preprocessing,
                colormap: colormap, alpha: Float(alpha), budget: budget)
        }
        return Overlay.grid(tiles, columns: columns, gap: gap)
    }
}
