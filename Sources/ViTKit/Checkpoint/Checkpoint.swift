import Foundation

/// Loading a checkpoint: find the files, pick the dialect, build the one internal layout, check every tensor.
package enum Checkpoint {
    /// The files of a checkpoint given as a folder, or as a `.safetensors` file (or a sharded set's
    /// `model.safetensors.index.json`) with `config.json` beside it.
    struct Files {
        var weights: String
        var config: String
        var preprocessorConfig: String?
        var name: String

        init(weights: String, config: String, preprocessorConfig: String? = nil, name: String) {
            (self.weights, self.config, self.preprocessorConfig, self.name) = (weights, config, preprocessorConfig, name)
        }

        init(path: String) throws {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ViTError.modelNotFound(path: path, reason: "no such file or folder")
            }
            let folder: URL
            if isDirectory.boolValue {
                folder = URL(fileURLWithPath: path)
                let candidates = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
                    .filter { $0.hasSuffix(".safetensors") }.sorted()
                if candidates.contains("model.safetensors") {
                    weights = folder.appendingPathComponent("model.safetensors").path
                } else if FileManager.default.fileExists(atPath: folder.appendingPathComponent(Self.shardIndex).path) {
                    weights = folder.appendingPathComponent(Self.shardIndex).path
                } else if candidates.count == 1 {
                    weights = folder.appendingPathComponent(candidates[0]).path
                } else if candidates.isEmpty {
                    throw ViTError.modelNotFound(path: path, reason: "the folder has no model.safetensors")
                } else {
                    throw ViTError.modelNotFound(
                        path: path, reason: "several .safetensors files and none named model.safetensors: \(candidates)")
                }
            } else {
                guard path.hasSuffix(".safetensors") || path.hasSuffix(".safetensors.index.json") else {
                    throw ViTError.modelNotFound(path: path, reason: "expected a folder or a .safetensors file")
                }
                weights = path
                folder = URL(fileURLWithPath: path).deletingLastPathComponent()
            }
            config = folder.appendingPathComponent("config.json").path
            guard FileManager.default.fileExists(atPath: config) else {
                throw ViTError.modelNotFound(
                    path: path, reason: "no config.json next to \(URL(fileURLWithPath: weights).lastPathComponent)")
            }
            let preprocessor = folder.appendingPathComponent("preprocessor_config.json").path
            preprocessorConfig = FileManager.default.fileExists(atPath: preprocessor) ? preprocessor : nil
            // A snapshot in the Hugging Face cache (…/models--ORG--NAME/snapshots/<commit>) is named ORG/NAME.
            name =
                HubCache.repository(ofSnapshotFolder: folder.path)
                ?? (isDirectory.boolValue
                    ? folder.standardizedFileURL.lastPathComponent
                    : URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)
        }

        /// The index of a sharded checkpoint, as `save_pretrained` writes it.
        static let shardIndex = "model.safetensors.index.json"
    }

    /// Loads a checkpoint.
    ///
    /// - Parameters:
    ///   - path: a folder with `model.safetensors` and `config.json` (timm or Hugging Face), or a `.safetensors` file.
    ///   - imageSize: run at this input size instead of the checkpoint's, resampling the position embeddings as the
    ///     checkpoint's library does.
    ///   - precision: the arithmetic of the linear layers (``Precision``; default fp32).
    /// - Throws: ``ViTError`` naming the file and the reason.
    package static func load(path: String, imageSize: Int? = nil, precision: Precision = .fp32) throws -> (ModelInfo, VisionTransformer) {
        try load(path: path, imageSize: imageSize, format: WeightFormat(precision: precision))
    }

    /// The same with a weight format that may name a reduced-precision micro-kernel (tests, benchmarks).
    package static func load(path: String, imageSize: Int? = nil, precision: Precision, kernel: String?) throws -> (
        ModelInfo, VisionTransformer
    ) {
        try load(path: path, imageSize: imageSize, format: WeightFormat(precision: precision, kernel: kernel))
    }

    static func load(path: String, imageSize: Int?, format: WeightFormat) throws -> (ModelInfo, VisionTransformer) {
        let files = try Files(path: path)
        return try load(
            files: files, config: try JSONObject(contentsOf: files.config), safetensors: try SafeTensorsFile(path: files.weights),
            imageSize: imageSize, format: format)
    }

    /// The steps after the files are found: pick the dialect from the config, read it, build and check the weights.
    static func load(
        files: Files, config: JSONObject, safetensors: SafeTensorsFile, imageSize: Int? = nil, format: WeightFormat = .fp32
    ) throws -> (
        ModelInfo, VisionTransformer
    ) {
        let dialect: CheckpointDialect.Type
        if config.has("architecture") {
            dialect = TimmDialect.self
        } else if config.has("model_type") || config.has("architectures") {
            dialect = HuggingFaceDialect.self
        } else {
            throw ViTError.invalidConfiguration(
                path: files.config,
                reason: "neither a timm config ('architecture') nor a Hugging Face config ('model_type', 'architectures')")
        }
        var (info, store) = try dialect.read(files: files, config: config, safetensors: safetensors)
        try info.architecture.validate(path: files.config)
        var weights = try ViTWeights(architecture: info.architecture, store: &store, format: format)
        if let target = info.positionEmbeddingTarget, target.size != info.architecture.imageHeight {
            try resize(&info, &weights, to: target.size, method: target.method, configPath: files.config, scalePreprocessing: false)
            info.nativeImageSize = (target.size, target.size)
        }
        if let imageSize, imageSize != info.architecture.imageHeight || imageSize != info.architecture.imageWidth {
            try resize(&info, &weights, to: imageSize, method: dialect.positionEmbeddingResampling, configPath: files.config)
        }
        return (info, VisionTransformer(architecture: info.architecture, weights: weights))
    }

    /// Resamples the position embeddings to a new input size (square), and scales the preprocessing to match.
    private static func resize(
        _ info: inout ModelInfo, _ weights: inout ViTWeights, to size: Int,
        method: PositionEmbeddingResampling, configPath: String, scalePreprocessing: Bool = true
    ) throws {
        var a = info.architecture
        guard !a.relativePositionBias || method == .timm else {
            throw ViTError.invalidArgument(
                "resampling a Hugging Face BEiT's relative position bias is not supported; run at \(a.imageHeight)×\(a.imageWidth)")
        }
        guard size > 0, size % a.patchSize == 0, size <= 16384 else {
            throw ViTError.invalidArgument("image size \(size) must be a positive multiple of the patch size \(a.patchSize)")
        }
        let old = (a.gridHeight, a.gridWidth)
        let prefixRows = a.positionEmbeddingSkipsRegisters ? 1 : a.positionEmbeddingIncludesPrefix ? a.prefixTokens : 0
        a.imageHeight = size
        a.imageWidth = size
        var resampled: [String] = []
        if a.absolutePositionEmbedding {
            weights.positionEmbedding = FloatBuffer(
                method.resample(
                    weights.positionEmbedding.array, prefixRows: prefixRows, dim: a.embedDim,
                    from: old, to: (a.gridHeight, a.gridWidth)))
            resampled.append("position embeddings resampled \(old.0)×\(old.1) → \(a.gridHeight)×\(a.gridWidth) (\(method.description))")
        }
        if a.rotary != nil { resampled.append("RoPE angles for the \(a.gridHeight)×\(a.gridWidth) grid, as timm builds them") }
        if a.relativePositionBias {
            var shared: (table: [Float], matrix: FloatBuffer)? = nil  // one resampling for a shared table
            for b in weights.blocks.indices {
                guard let table = weights.blocks[b].relativeBiasTable else { continue }
                if a.sharedRelativePositionBias, let shared {
                    (weights.blocks[b].relativeBiasTable, weights.blocks[b].relativeBias) = (shared.table, shared.matrix)
                    continue
                }
                let resized = RelativePositionBias.resample(table, heads: a.heads, from: old, to: (a.gridHeight, a.gridWidth))
                let bias = try RelativePositionBias(architecture: a) { _ in resized }
                weights.blocks[b].relativeBias = FloatBuffer(bias.matrix)
                weights.blocks[b].relativeBiasTable = bias.table
                shared = (bias.table, weights.blocks[b].relativeBias!)
            }
            resampled.append("relative position bias tables resampled as timm's resize_rel_pos_bias_table")
        }
        info.notes.append(
            "input size \(size)×\(size) (checkpoint: \(info.nativeImageSize.height)×\(info.nativeImageSize.width)); "
                + resampled.joined(separator: "; "))
        info.architecture = a
        if scalePreprocessing { info.preprocessing = info.preprocessing.scaled(toInput: size) }
    }
}

/// How a library resamples learned position embeddings for another grid size.
enum PositionEmbeddingResampling {
    /// timm `resample_abs_pos_embed`: `F.interpolate(mode="bicubic", antialias=True)` (a = −0.5, Pillow-style taps).
    case timm
    /// Hugging Face `interpolate_pos_encoding`: `F.interpolate(mode="bicubic", align_corners=False)` (a = −0.75).
    case huggingFace

    var description: String {
        switch self {
        case .timm: "bicubic, antialiased, as timm"
        case .huggingFace: "bicubic a=-0.75, as Hugging Face interpolate_pos_encoding"
        }
    }

    /// `embedding` is `[prefixRows + gh·gw][dim]`; prefix rows are kept as they are.
    func resample(_ embedding: [Float], prefixRows: Int, dim: Int, from old: (Int, Int), to new: (Int, Int)) -> [Float] {
        let prefix = Array(embedding[0..<(prefixRows * dim)])
        let grid = Array(embedding[(prefixRows * dim)...])
        let taps: (Int, Int) -> [(indices: [Int], weights: [Double])]
        switch self {
        case .timm: taps = { ResampleTaps(inputSize: $0, outputSize: $1, filter: .bicubic).asLists }
        case .huggingFace: taps = { ResampleTaps.pytorchBicubic(inputSize: $0, outputSize: $1) }
        }
        return prefix
            + Resample.resizeGrid(
                grid, height: old.0, width: old.1, channels: dim, newHeight: new.0, newWidth: new.1, taps: taps)
    }
}

/// A checkpoint format: reads its configuration into a ``ModelInfo`` and maps its tensor names onto the internal
/// (timm) naming.
protocol CheckpointDialect {
    static var positionEmbeddingResampling: PositionEmbeddingResampling { get }
    static func read(files: Checkpoint.Files, config: JSONObject, safetensors: SafeTensorsFile) throws -> (ModelInfo, TensorStore)
}
