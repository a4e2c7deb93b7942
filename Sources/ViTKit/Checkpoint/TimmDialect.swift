import Foundation

/// timm `VisionTransformer` / `VisionTransformerDistilled` checkpoints: `state_dict()` keys as they are (the
/// internal naming *is* timm's), `config.json` in the Hub style (`architecture`, `num_classes`, `global_pool`,
/// optional `model_args`, `pretrained_cfg`, `label_names`). Dimensions missing from `model_args` are inferred from
/// tensor shapes; the head count, which shapes cannot tell, from `model_args.num_heads` or the architecture name.
enum TimmDialect: CheckpointDialect {
    static let positionEmbeddingResampling = PositionEmbeddingResampling.timm

    static func read(files: Checkpoint.Files, config: JSONObject, safetensors: SafeTensorsFile) throws -> (ModelInfo, TensorStore)
    {
        let path = files.config, weightsPath = files.weights
        let store = TensorStore(
            file: safetensors, sources: Dictionary(uniqueKeysWithValues: safetensors.tensors.keys.map { ($0, [$0]) }))
        let architectureName = try config.string("architecture") ?? "vit"
        let args = try config.object("model_args") ?? JSONObject(path: path, fieldPath: "model_args", values: [:])
        var notes: [String] = []
        func shape(_ key: String) throws -> [Int] {
            guard let shape = store.shape(key) else { throw ViTError.missingWeight(path: weightsPath, key: key) }
            return shape
        }
        /// A shape whose first dimension is read: a 0-d tensor ([]) would trap on [0].
        func nonScalarShape(_ key: String) throws -> [Int] {
            let found = try shape(key)
            guard !found.isEmpty else {
                throw ViTError.shapeMismatch(path: weightsPath, key: key, expected: [-1, -1], found: found)
            }
            return found
        }

        // Patch embedding [D, C, p, p] fixes D, C and p.
        let patchShape = try shape("patch_embed.proj.weight")
        guard patchShape.count == 4, patchShape[2] == patchShape[3] else {
            throw ViTError.shapeMismatch(
                path: weightsPath, key: "patch_embed.proj.weight", expected: [-1, 3, -1, -1], found: patchShape)
        }
        let embedDim = try args.int("embed_dim") ?? patchShape[0]
        let channels = try args.int("in_chans") ?? patchShape[1]
        let patchSize = try args.intOrInts("patch_size")?.first ?? patchShape[2]

        let blockIndices = Set(
            safetensors.tensors.keys.compactMap { key -> Int? in
                let parts = key.split(separator: ".")
                // Bounded: "blocks.9223372036854775807.x" would overflow the +1 below (validate() allows 2^20 anyway).
                guard parts.count > 2, parts[0] == "blocks", let index = Int(parts[1]), index >= 0, index < 1 << 20 else {
                    return nil
                }
                return index
            })
        let depth = try args.int("depth") ?? (blockIndices.max().map { $0 + 1 } ?? 0)
        let mlpDim: Int
        if let ratio = try args.double("mlp_ratio") {
            // Int(Double) traps out of range: 1e300 must be an error, not a crash.
            guard ratio > 0, ratio <= 64, abs(embedDim) <= 1 << 31 else { throw args.fail("mlp_ratio", "must be in (0, 64]") }
            mlpDim = Int(Double(embedDim) * ratio)
        } else {
            mlpDim = try nonScalarShape("blocks.0.mlp.fc1.weight")[0]
        }
        let heads: Int
        if let h = try args.int("num_heads") {
            heads = h
        } else if let h = headsFromName(architectureName) {
            heads = h
            notes.append("\(h) attention heads, from the architecture name '\(architectureName.forMessage)'")
        } else {
            throw ViTError.invalidConfiguration(
                path: path,
                reason:
                    "cannot tell the number of attention heads: add model_args.num_heads (architecture '\(architectureName.forMessage)' is not a known ViT size)"
            )
        }

        let classToken = try args.bool("class_token") ?? store.contains("cls_token")
        let distillationToken = store.contains("dist_token")
        let registerTokens = try args.int("reg_tokens") ?? (store.shape("reg_token")?.dropFirst().first ?? 0)
        let prefix = (classToken ? 1 : 0) + (distillationToken ? 1 : 0) + registerTokens

        // Input size: model_args, else pretrained_cfg.input_size, else the square grid the position embedding implies.
        let pretrained = try config.object("pretrained_cfg")
        let positionRows = try shape("pos_embed").dropFirst().first ?? 0
        var imageSize: (Int, Int)
        if let size = try args.intOrInts("img_size") {
            guard !size.isEmpty else { throw args.fail("img_size", "must be an integer or a list of 1 or 2 integers") }
            imageSize = (size[0], size.count > 1 ? size[1] : size[0])
        } else if let input = try pretrained?.ints("input_size"), input.count == 3 {
            imageSize = (input[1], input[2])
        } else {
            let patches = positionRows - (try args.bool("no_embed_class") ?? false ? 0 : prefix)
            let side = Int(Double(max(patches, 0)).squareRoot().rounded())
            guard side * side == patches else {
                throw ViTError.invalidConfiguration(
                    path: path, reason: "cannot infer the image size: add pretrained_cfg.input_size")
            }
            imageSize = (side * patchSize, side * patchSize)
            notes.append("input size \(imageSize.0)×\(imageSize.1), inferred from pos_embed")
        }
        let patchCount = (imageSize.0 / max(patchSize, 1)) * (imageSize.1 / max(patchSize, 1))
        // no_embed_class (DeiT-III, registers): the position embedding covers the patches only.
        let noEmbedClass = try args.bool("no_embed_class") ?? (prefix > 0 && positionRows == patchCount)

        let pool = try args.string("global_pool") ?? config.string("global_pool") ?? (classToken ? "token" : "avg")
        let pooling: ViTArchitecture.Pooling
        switch pool {
        case "token": pooling = .token
        case "avg": pooling = .average
        default:
            throw ViTError.invalidConfiguration(
                path: path, reason: "global_pool '\(pool.forMessage)' is not supported (supported: token, avg)")
        }
        let activation: ViTArchitecture.Activation
        switch try args.string("act_layer") ?? "gelu" {
        case "gelu": activation = .gelu
        case "gelu_tanh": activation = .geluTanh
        case let other:
            throw ViTError.invalidConfiguration(path: path, reason: "act_layer '\(other.forMessage)' is not supported")
        }
        let numClasses = try nonScalarShape("head.weight")[0]
        if let declared = try config.int("num_classes"), declared != numClasses {
            throw ViTError.shapeMismatch(
                path: weightsPath, key: "head.weight", expected: [declared, embedDim], found: try shape("head.weight"))
        }

        let architecture = ViTArchitecture(
            embedDim: embedDim, depth: depth, heads: heads, mlpDim: mlpDim, patchSize: patchSize, channels: channels,
            imageHeight: imageSize.0, imageWidth: imageSize.1, numClasses: numClasses,
            classToken: classToken, distillationToken: distillationToken, distillationHead: store.contains("head_dist.weight"),
            registerTokens: registerTokens, positionEmbeddingIncludesPrefix: !noEmbedClass, pooling: pooling,
            preNorm: try args.bool("pre_norm") ?? store.contains("norm_pre.weight"),
            finalNorm: store.contains("norm.weight"),
            poolNorm: try args.bool("fc_norm") ?? store.contains("fc_norm.weight"),
            layerScale: store.contains("blocks.0.ls1.gamma"),
            qkvBias: try args.bool("qkv_bias") ?? store.contains("blocks.0.attn.qkv.bias"),
            layerNormEps: 1e-6, activation: activation)

        let preprocessing = try Self.preprocessing(pretrained, inputSize: imageSize, path: path, notes: &notes)
        let (labels, labelSource) = try resolveLabels(try config.strings("label_names"), count: numClasses, configPath: path)
        let variant = distillationToken ? "VisionTransformerDistilled" : "VisionTransformer"
        let info = ModelInfo(
            name: files.name, weightsPath: files.weights, configPath: files.config, preprocessorConfigPath: nil,
            format: .timm, variant: "\(variant) (\(architectureName))", architecture: architecture,
            nativeImageSize: imageSize, preprocessing: preprocessing, labels: labels, labelSource: labelSource,
            dtypes: Array(Set(safetensors.tensors.values.map(\.dtype.rawValue))).sorted(), notes: notes)
        return (info, store)
    }

    /// timm's eval preprocessing from `pretrained_cfg`, with timm's defaults for what is missing.
    static func preprocessing(_ cfg: JSONObject?, inputSize: (Int, Int), path: String, notes: inout [String]) throws
        -> Preprocessing
    {
        let cfg = cfg ?? JSONObject(path: path, fieldPath: "pretrained_cfg", values: [:])
        if !cfg.has("mean") { notes.append("no pretrained_cfg mean/std: timm's defaults (ImageNet mean/std) assumed") }
        let mean = try cfg.doubles("mean") ?? [0.485, 0.456, 0.406]
        let std = try cfg.doubles("std") ?? [0.229, 0.224, 0.225]
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else {
            throw ViTError.invalidConfiguration(path: path, reason: "pretrained_cfg mean/std must be 3 numbers (std > 0)")
        }
        let cropPct = try cfg.double("crop_pct") ?? 0.875
        guard cropPct > 0.05 && cropPct <= 4 else { throw cfg.fail("crop_pct", "must be in (0.05, 4]") }
        let interpolation = try cfg.string("interpolation") ?? "bicubic"
        guard let filter = ResampleFilter(rawValue: interpolation == "lanczos" ? "lanczos" : interpolation) else {
            throw cfg.fail(
                "interpolation",
                "'\(interpolation.forMessage)' is not supported (bicubic, bilinear, nearest, box, hamming, lanczos)")
        }
        let mode = try cfg.string("crop_mode") ?? "center"
        guard mode == "center" || mode == "squash" else {
            throw cfg.fail("crop_mode", "'\(mode.forMessage)' is not supported (center, squash)")
        }
        return .timm(
            inputHeight: inputSize.0, inputWidth: inputSize.1, cropPct: cropPct, squash: mode == "squash",
            filter: filter, mean: mean.map(Float.init), std: std.map(Float.init))
    }

    /// Head counts of timm's and DeiT's named ViT sizes (head dim 64, except huge/giant).
    static func headsFromName(_ name: String) -> Int? {
        let lower = name.lowercased()
        let table: [(String, Int)] = [
            ("tiny", 3), ("small", 6), ("medium", 8), ("base", 12), ("large", 16), ("huge", 16), ("giant", 16),
        ]
        for (size, heads) in table where lower.contains("_\(size)") || lower.hasPrefix(size) { return heads }
        return nil
    }
}
