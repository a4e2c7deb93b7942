import Foundation

/// timm checkpoints as the Hub publishes them: `state_dict()` keys (the internal naming *is* timm's
/// `VisionTransformer`'s), `config.json` with `architecture`, `num_classes`, optional `model_args`, `pretrained_cfg`,
/// `label_names`.
///
/// The model is built the way timm builds it: the constructor arguments of the architecture's entry point (timm's
/// registry, ``TimmArchitectures``), overridden by `model_args`, read by the rules of its class
/// (`VisionTransformer`, `VisionTransformerDistilled`, `Eva`, `Beit`). An argument whose value changes the maths
/// and is not implemented is refused by name; a checkpoint is never run under assumptions it does not satisfy. An
/// architecture timm does not know is read from `model_args` as a `VisionTransformer`, or from its tensors (the head
/// count from a timm size name) when it has none.
enum TimmDialect: CheckpointDialect {
    static let positionEmbeddingResampling = PositionEmbeddingResampling.timm

    static func read(files: Checkpoint.Files, config: JSONObject, safetensors: SafeTensorsFile) throws -> (ModelInfo, TensorStore)
    {
        let path = files.config, weightsPath = files.weights
        var sources = Dictionary(uniqueKeysWithValues: safetensors.tensors.keys.map { ($0, [$0]) })
        let architectureName = try config.string("architecture") ?? "vit"
        let overrides = try config.object("model_args")
        let entry = try TimmArchitectures.entry(architectureName)
        // timm: entry-point arguments, then model_args over them (timm/models/_factory.py create_model).
        var merged = entry?.args ?? [:]
        for (key, value) in overrides?.values ?? [:] { merged[key] = value }
        let args = JSONObject(path: path, fieldPath: "model_args", values: merged)
        let modelClass = entry?.modelClass ?? (architectureName.hasPrefix("deit") && safetensors.tensors["dist_token"] != nil
            ? "VisionTransformerDistilled" : "VisionTransformer")
        var notes: [String] = []
        if entry == nil {
            notes.append("'\(architectureName.forMessage)' is not in timm \(TimmArchitectures.timmVersion)'s registry: read as a VisionTransformer from \(overrides == nil ? "its tensors" : "model_args")")
        }
        func refuse(_ what: String) -> ViTError {
            .invalidConfiguration(
                path: path,
                reason: "\(architectureName.forMessage) (timm \(modelClass)): \(what) is not supported; supported: ViT/DeiT (pre-norm or residual post-norm blocks, GELU/QuickGELU/SwiGLU MLPs, LayerScale, registers, CLIP-style norm_pre), EVA-02 and RoPE-ViT (axial RoPE), BEiT (relative position bias), BEiT-3 sub-LN; token or average pooling")
        }
        func shape(_ key: String) throws -> [Int] {
            guard let parts = sources[key], let first = parts.first, let found = safetensors.tensors[first]?.shape, !found.isEmpty else {
                throw ViTError.missingWeight(path: weightsPath, key: key)
            }
            return found
        }
        /// A shape whose first dimension is read: a 0-d tensor ([]) would trap on [0].
        func nonScalarShape(_ key: String) throws -> [Int] {
            guard let parts = sources[key], let first = parts.first, let found = safetensors.tensors[first]?.shape else {
                throw ViTError.missingWeight(path: weightsPath, key: key)
            }
            guard !found.isEmpty else {
                throw ViTError.shapeMismatch(path: weightsPath, key: first, expected: [-1, -1], found: found)
            }
            return found
        }
        func has(_ key: String) -> Bool { safetensors.tensors[key] != nil }
        func rename(_ from: String, to: String) {
            if let parts = sources.removeValue(forKey: from) { sources[to] = parts }
        }
        /// A flag argument that must have its default value (the alternatives are not implemented).
        func require(_ key: String, is expected: Bool, _ what: String) throws {
            if try args.bool(key) ?? expected != expected { throw refuse(what) }
        }
        func requireNull(_ key: String, _ what: String) throws { if args.has(key) { throw refuse(what) } }

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
                    "cannot tell the number of attention heads: '\(architectureName.forMessage)' is not in timm \(TimmArchitectures.timmVersion)'s registry; add model_args.num_heads"
            )
        }

        // The choices that differ between the classes (timm vision_transformer.py, eva.py, beit.py).
        var block = ViTArchitecture.Block.preNorm, mlp = ViTArchitecture.MLP.standard
        var activation = ViTArchitecture.Activation.gelu
        var attentionNorm = false, mlpNorm = false, rotary: ViTArchitecture.Rotary? = nil, relativeBias = false
        var sharedRelativeBias = false
        var layerScale = false, absolutePosition = true
        var eps: Float = 1e-6
        func normEps(_ key: String, default value: Float) throws -> Float {
            switch args.values[key] {
            case nil, is NSNull: return value
            case let name as String where name.lowercased() == "layernorm": return 1e-6  // timm.layers.LayerNorm
            case let spec as [String: Any] where (spec["name"] as? String)?.lowercased() == "layernorm":
                return ((spec["kwargs"] as? [String: Any])?["eps"] as? Double).map(Float.init) ?? 1e-5  // nn.LayerNorm
            default: throw refuse("norm_layer \(String(describing: args.values[key]!).prefix(60))")
            }
        }
        func perBlock(_ body: (String) -> Void) { for i in 0..<depth { body("blocks.\(i)") } }
        /// timm's `SwiGLU` keeps the gate and value projections apart (`mlp.fc1_g`, `mlp.fc1_x`): fused here into one
        /// `fc1` with outputs `[gate | value]`, the packed layout.
        func fuseSplitSwiGLU() {
            perBlock { b in
                for part in ["weight", "bias"] where has("\(b).mlp.fc1_g.\(part)") {
                    sources["\(b).mlp.fc1.\(part)"] = ["\(b).mlp.fc1_g.\(part)", "\(b).mlp.fc1_x.\(part)"]
                    sources["\(b).mlp.fc1_g.\(part)"] = nil
                    sources["\(b).mlp.fc1_x.\(part)"] = nil
                }
            }
        }
        switch modelClass {
        case "VisionTransformer", "VisionTransformerDistilled":
            switch try args.string("block_fn") ?? "Block" {
            case "Block": block = .preNorm
            case "ResPostBlock": block = .residualPostNorm
            case let other: throw refuse("block_fn \(other.forMessage)")
            }
            if let attn = try args.string("attn_layer"), attn != "Attention" { throw refuse("attn_layer \(attn.forMessage)") }
            switch try args.string("act_layer") ?? "gelu" {
            case "gelu": activation = .gelu
            case "gelu_tanh": activation = .geluTanh
            case "quick_gelu": activation = .quickGELU
            case "silu", "swish": activation = .silu
            case let other: throw refuse("act_layer \(other.forMessage)")
            }
            switch try args.string("mlp_layer") ?? "Mlp" {
            case "Mlp": mlp = .standard
            case "SwiGLUPacked": mlp = .gated  // GluMlp(gate_last=False): act(first half)·second half
            case "SwiGLU":
                mlp = .gated
                fuseSplitSwiGLU()
            case let other: throw refuse("mlp_layer \(other.forMessage)")
            }
            eps = try normEps("norm_layer", default: 1e-6)
            try require("qk_norm", is: false, "qk_norm")
            try requireNull("embed_norm_layer", "embed_norm_layer")
            attentionNorm = try args.bool("scale_attn_norm") ?? false
            mlpNorm = try args.bool("scale_mlp_norm") ?? false
            if let posEmbed = try args.string("pos_embed"), posEmbed != "learn" { throw refuse("pos_embed \(posEmbed.forMessage)") }
            layerScale = has("blocks.0.ls1.gamma")
        case "Eva":
            switch try args.string("attn_type") ?? "eva" {
            case "eva":
                // EvaAttention: q_bias and v_bias (no key bias), or separate q/k/v projections (k without bias).
                perBlock { b in
                    if has("\(b).attn.q_bias") {
                        sources["\(b).attn.qkv.bias"] = ["\(b).attn.q_bias", TensorStore.zeros, "\(b).attn.v_bias"]
                        sources["\(b).attn.q_bias"] = nil
                        sources["\(b).attn.v_bias"] = nil
                    }
                    if has("\(b).attn.q_proj.weight") {
                        sources["\(b).attn.qkv.weight"] = ["q_proj", "k_proj", "v_proj"].map { "\(b).attn.\($0).weight" }
                        for p in ["q_proj", "k_proj", "v_proj"] { sources["\(b).attn.\(p).weight"] = nil }
                        if has("\(b).attn.q_proj.bias") {
                            sources["\(b).attn.qkv.bias"] = ["\(b).attn.q_proj.bias", TensorStore.zeros, "\(b).attn.v_proj.bias"]
                            sources["\(b).attn.q_proj.bias"] = nil
                            sources["\(b).attn.v_proj.bias"] = nil
                        }
                    }
                }
            case "rope": break  // AttentionRope: fused qkv with a full bias
            case let other: throw refuse("attn_type \(other.forMessage)")
            }
            if try args.bool("use_rot_pos_emb") ?? false {
                let ropeType = try args.string("rope_type") ?? "cat"
                guard ropeType == "cat" || ropeType == "mixed" else {
                    throw refuse("rope_type \(ropeType.forMessage) (only 'cat' and 'mixed')")
                }
                for key in ["rope_rescale_coords", "rope_jitter_coords", "rope_shift_coords", "rope_mrope_section"] {
                    try requireNull(key, key)
                }
                try require("rope_rotate_half", is: false, "rope_rotate_half")
                rotary = ViTArchitecture.Rotary(
                    rowFirst: (try args.string("rope_grid_indexing") ?? "ij") == "ij",
                    temperature: Float(try args.double("rope_temperature") ?? 10000),
                    gridOffset: Float(try args.double("rope_grid_offset") ?? 0),
                    referenceGrid: try args.intOrInts("ref_feat_shape").map { $0.count == 1 ? [$0[0], $0[0]] : $0 })
                if ropeType == "mixed" {
                    // RotaryEmbeddingMixed ignores the temperature (beyond its initialisation), offset and reference grid.
                    rotary?.learnedFrequencies = true
                    rotary?.gridOffset = 0
                    rotary?.referenceGrid = nil
                }
            }
            absolutePosition = try args.bool("use_abs_pos_emb") ?? true
            if try args.bool("swiglu_mlp") ?? false {
                mlp = .gated
                activation = .silu
                fuseSplitSwiGLU()
            }
            attentionNorm = try args.bool("scale_attn_inner") ?? false
            mlpNorm = try args.bool("scale_mlp") ?? false
            eps = try normEps("norm_layer", default: 1e-6)
            try require("qk_norm", is: false, "qk_norm")
            try require("use_post_norm", is: false, "use_post_norm")
            try require("attn_only_layer_scale", is: false, "attn_only_layer_scale")
            try requireNull("num_kv_heads", "num_kv_heads")
            perBlock { b in
                rename("\(b).gamma_1", to: "\(b).ls1.gamma")
                rename("\(b).gamma_2", to: "\(b).ls2.gamma")
            }
            layerScale = sources["blocks.0.ls1.gamma"] != nil
        case "Beit":
            absolutePosition = try args.bool("use_abs_pos_emb") ?? false
            sharedRelativeBias = try args.bool("use_shared_rel_pos_bias") ?? false
            relativeBias = try sharedRelativeBias || (args.bool("use_rel_pos_bias") ?? false)
            eps = try normEps("norm_layer", default: 1e-6)
            perBlock { b in
                if has("\(b).attn.q_bias") {
                    sources["\(b).attn.qkv.bias"] = ["\(b).attn.q_bias", TensorStore.zeros, "\(b).attn.v_bias"]
                    sources["\(b).attn.q_bias"] = nil
                    sources["\(b).attn.v_bias"] = nil
                }
                rename("\(b).gamma_1", to: "\(b).ls1.gamma")
                rename("\(b).gamma_2", to: "\(b).ls2.gamma")
                sources["\(b).attn.relative_position_index"] = nil
            }
            layerScale = sources["blocks.0.ls1.gamma"] != nil
        default:
            throw refuse("the model class")
        }
        let store = TensorStore(file: safetensors, sources: sources)
        // MLP width: timm's int(dim · mlp_ratio) (the whole fc1 width of a packed GluMlp in a ViT Block, half of it
        // in an EvaBlock), else from fc2 ([D, hidden]).
        let mlpDim: Int
        if let ratio = try args.double("mlp_ratio") {
            // Int(Double) traps out of range: 1e300 must be an error, not a crash.
            guard ratio > 0, ratio <= 64, abs(embedDim) <= 1 << 31 else { throw args.fail("mlp_ratio", "must be in (0, 64]") }
            // Python's int(dim * mlp_ratio); the ratio read from JSON may be an ulp off, so nudge before truncating.
            let hidden = Int((Double(embedDim) * ratio + 1e-6).rounded(.down))
            let packedInBlock = try modelClass != "Eva" && args.string("mlp_layer") == "SwiGLUPacked"
            mlpDim = packedInBlock ? hidden / 2 : hidden
        } else {
            mlpDim = try nonScalarShape("blocks.0.mlp.fc2.weight").last ?? 0
        }

        let classToken = try args.bool("class_token") ?? store.contains("cls_token")
        let distillationToken = store.contains("dist_token")
        let registerTokens =
            try args.int("reg_tokens") ?? args.int("num_reg_tokens") ?? (store.shape("reg_token")?.dropFirst().first ?? 0)
        let prefix = (classToken ? 1 : 0) + (distillationToken ? 1 : 0) + registerTokens

        // Input size: model_args, else pretrained_cfg.input_size (timm sets img_size from it), else the entry point's,
        // else the square grid the position embedding implies.
        let pretrained = try config.object("pretrained_cfg")
        let positionRows = store.shape("pos_embed")?.dropFirst().first ?? 0
        var imageSize: (Int, Int)
        if let size = try overrides?.intOrInts("img_size") ?? (entry == nil ? args.intOrInts("img_size") : nil) {
            guard !size.isEmpty else { throw args.fail("img_size", "must be an integer or a list of 1 or 2 integers") }
            imageSize = (size[0], size.count > 1 ? size[1] : size[0])
        } else if let input = try pretrained?.ints("input_size"), input.count == 3 {
            imageSize = (input[1], input[2])
        } else if let size = try args.intOrInts("img_size"), !size.isEmpty {
            imageSize = (size[0], size.count > 1 ? size[1] : size[0])
        } else {
            let patches = positionRows - (try args.bool("no_embed_class") ?? false ? 0 : prefix)
            let side = Int(Double(max(patches, 0)).squareRoot().rounded())
            guard side * side == patches, side > 0 else {
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
        case "map":
            pooling = .attentionPool

            if let latent = store.shape("attn_pool.latent"), latent.count == 3, latent[1] != 1 { throw refuse("latent_len > 1") }
        default: throw refuse("global_pool '\(pool.forMessage)'")
        }
        if pooling != .attentionPool, try args.bool("pool_include_prefix") ?? false { throw refuse("pool_include_prefix") }
        if !has("head.weight"), try args.int("num_classes") == 0 || config.int("num_classes") == 0 {
            throw refuse("a checkpoint without a classification head (num_classes 0, an image encoder)")
        }
        let numClasses = try nonScalarShape("head.weight")[0]
        if let declared = try config.int("num_classes"), declared != numClasses {
            throw ViTError.shapeMismatch(
                path: weightsPath, key: "head.weight", expected: [declared, embedDim], found: try shape("head.weight"))
        }

        // Which norms exist is what the module built (a module's weight is in its state_dict exactly when it exists).
        var architecture = ViTArchitecture(
            embedDim: embedDim, depth: depth, heads: heads, mlpDim: mlpDim, patchSize: patchSize, channels: channels,
            imageHeight: imageSize.0, imageWidth: imageSize.1, numClasses: numClasses,
            classToken: classToken, distillationToken: distillationToken, distillationHead: store.contains("head_dist.weight"),
            registerTokens: registerTokens, positionEmbeddingIncludesPrefix: !noEmbedClass, pooling: pooling,
            preNorm: store.contains("norm_pre.weight"), finalNorm: store.contains("norm.weight"),
            poolNorm: store.contains("fc_norm.weight"), layerScale: layerScale,
            qkvBias: store.contains("blocks.0.attn.qkv.bias"), layerNormEps: eps, activation: activation)
        architecture.block = block
        architecture.mlp = mlp
        architecture.attentionNorm = attentionNorm
        architecture.mlpNorm = mlpNorm
        architecture.patchEmbeddingBias = store.contains("patch_embed.proj.bias")
        architecture.projectionBias = store.contains("blocks.0.attn.proj.bias")
        architecture.absolutePositionEmbedding = absolutePosition && store.contains("pos_embed")
        architecture.rotary = rotary
        architecture.relativePositionBias = relativeBias
        architecture.sharedRelativePositionBias = sharedRelativeBias
        architecture.family = "timm \(modelClass)"
        architecture.attentionPoolHeads = try args.int("attn_pool_num_heads") ?? heads
        // ViT's pool() drops the prefix tokens before the attention pool (unless pool_include_prefix); EVA's keeps them.
        architecture.attentionPoolIncludesPrefix = try modelClass == "Eva" || (args.bool("pool_include_prefix") ?? false)
        if relativeBias && prefix != 1 { throw refuse("a relative position bias without exactly one class token") }

        let preprocessing = try Self.preprocessing(pretrained, inputSize: imageSize, path: path, notes: &notes)
        let (labels, labelSource) = try resolveLabels(try config.strings("label_names"), count: numClasses, configPath: path)
        let info = ModelInfo(
            name: files.name, weightsPath: files.weights, configPath: files.config, preprocessorConfigPath: nil,
            format: .timm, variant: "\(modelClass) (\(architectureName))", architecture: architecture,
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
