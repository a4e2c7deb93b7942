import Foundation

/// Hugging Face `ViTForImageClassification`, `DeiTForImageClassification`, `DeiTForImageClassificationWithTeacher`,
/// `BeitForImageClassification`, `Dinov2ForImageClassification` and `Dinov2WithRegistersForImageClassification`
/// checkpoints as `save_pretrained` writes them, mapped onto the internal (timm)
/// naming: renames, plus query/key/value fused into `qkv` (BEiT: no key bias, as timm's `q_bias`/`v_bias`).
enum HuggingFaceDialect: CheckpointDialect {
    static let positionEmbeddingResampling = PositionEmbeddingResampling.huggingFace

    static func read(files: Checkpoint.Files, config: JSONObject, safetensors: SafeTensorsFile) throws -> (ModelInfo, TensorStore)
    {
        let path = files.config
        var notes: [String] = []
        let modelType = try config.string("model_type") ?? "vit"
        let supported = ["vit", "deit", "beit", "dinov2", "dinov2_with_registers"]
        guard supported.contains(modelType) else {
            throw ViTError.invalidConfiguration(
                path: path,
                reason: "model_type '\(modelType.forMessage)' is not supported (\(supported.joined(separator: ", ")))")
        }
        let beit = modelType == "beit", dinov2 = modelType.hasPrefix("dinov2")
        let variant =
            try config.strings("architectures")?.first
            ?? (modelType == "deit" ? "DeiTForImageClassification" : beit ? "BeitForImageClassification" : "ViTForImageClassification")
        let keys = Set(safetensors.tensors.keys)
        // save_pretrained writes the base model under "vit." / "deit."; a bare base model has no prefix.
        let base = ["\(modelType).", ""].first { keys.contains("\($0)embeddings.cls_token") } ?? "\(modelType)."

        let embedDim = try config.int("hidden_size") ?? 768
        let depth = try config.int("num_hidden_layers") ?? 12
        // Every layer has 16 tensors: more layers than tensors is a broken config (and 2^31 layers a long loop below).
        guard depth >= 0, depth <= keys.count else {
            throw config.fail("num_hidden_layers", "is \(depth), but the checkpoint has \(keys.count) tensors")
        }
        let heads = try config.int("num_attention_heads") ?? 12
        let mlpDim: Int
        if dinov2 {
            let ratio = try config.double("mlp_ratio") ?? 4
            guard ratio > 0, ratio <= 64, abs(embedDim) <= 1 << 31 else { throw config.fail("mlp_ratio", "must be in (0, 64]") }
            mlpDim = Int((Double(embedDim) * ratio + 1e-6).rounded(.down))
        } else {
            mlpDim = try config.int("intermediate_size") ?? 3072
        }
        let imageSize = try config.intOrInts("image_size") ?? [224]
        guard !imageSize.isEmpty else { throw config.fail("image_size", "must be an integer or a list of 1 or 2 integers") }
        let patchSize = try config.intOrInts("patch_size")?.first ?? 16
        let qkvBias = try config.bool("qkv_bias") ?? true
        let activation: ViTArchitecture.Activation
        switch try config.string("hidden_act") ?? "gelu" {
        case "gelu": activation = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": activation = .geluTanh
        case let other:
            throw config.fail("hidden_act", "'\(other.forMessage)' is not supported (gelu, gelu_new, gelu_pytorch_tanh)")
        }
        // BEiT (modeling_beit.py): relative position bias per layer, LayerScale lambda_1/lambda_2, mean pooling with
        // the pooler's LayerNorm, no absolute position embedding by default.
        let relativeBias = try beit && (config.bool("use_relative_position_bias") ?? false)
        let absolutePosition = try !beit || (config.bool("use_absolute_position_embeddings") ?? false)
        let meanPooling = try beit && (config.bool("use_mean_pooling") ?? true)
        if beit, try config.bool("use_shared_relative_position_bias") ?? false {
            throw ViTError.invalidConfiguration(path: path, reason: "BEiT's shared relative position bias is not supported")
        }
        // DINOv2 (modeling_dinov2*.py): LayerScale layer_scaleN.lambda1, registers after the class token (without a
        // position embedding), the classifier on [class token, mean of the patch tokens], and position embeddings
        // interpolated from the configured grid to the input's at every call.
        let registers = dinov2 ? try config.int("num_register_tokens") ?? 0 : 0
        if dinov2, try config.bool("use_swiglu_ffn") ?? false {
            throw ViTError.invalidConfiguration(path: path, reason: "DINOv2's SwiGLU FFN (use_swiglu_ffn) is not supported")
        }
        if !dinov2 && (config.has("num_register_tokens") || config.has("layerscale_value")) {
            throw ViTError.invalidConfiguration(
                path: path, reason: "\(variant.forMessage) with registers or LayerScale is not supported")
        }

        var sources: [String: [String]] = [
            "cls_token": ["\(base)embeddings.cls_token"],
            "patch_embed.proj.weight": ["\(base)embeddings.patch_embeddings.projection.weight"],
            "patch_embed.proj.bias": ["\(base)embeddings.patch_embeddings.projection.bias"],
        ]
        if absolutePosition { sources["pos_embed"] = ["\(base)embeddings.position_embeddings"] }
        if registers > 0 { sources["reg_token"] = ["\(base)embeddings.register_tokens"] }
        for part in ["weight", "bias"] {
            if meanPooling {
                sources["fc_norm.\(part)"] = ["\(base)pooler.layernorm.\(part)"]
            } else {
                sources["norm.\(part)"] = ["\(base)layernorm.\(part)"]
            }
        }
        let distillationToken = modelType == "deit"
        if distillationToken { sources["dist_token"] = ["\(base)embeddings.distillation_token"] }
        let withTeacher = keys.contains("distillation_classifier.weight")
        let headName = withTeacher ? "cls_classifier" : "classifier"
        for part in ["weight", "bias"] {
            sources["head.\(part)"] = ["\(headName).\(part)"]
            if withTeacher { sources["head_dist.\(part)"] = ["distillation_classifier.\(part)"] }
        }
        for i in 0..<max(depth, 0) {
            let layer = "\(base)encoder.layer.\(i)", block = "blocks.\(i)"
            if dinov2 {
                sources["\(block).ls1.gamma"] = ["\(layer).layer_scale1.lambda1"]
                sources["\(block).ls2.gamma"] = ["\(layer).layer_scale2.lambda1"]
            }
            for part in ["weight", "bias"] {
                sources["\(block).norm1.\(part)"] = ["\(layer).\(dinov2 ? "norm1" : "layernorm_before").\(part)"]
                sources["\(block).attn.qkv.\(part)"] = ["query", "key", "value"].map {
                    "\(layer).attention.attention.\($0).\(part)"
                }
                sources["\(block).attn.proj.\(part)"] = ["\(layer).attention.output.dense.\(part)"]
                sources["\(block).norm2.\(part)"] = ["\(layer).\(dinov2 ? "norm2" : "layernorm_after").\(part)"]
                sources["\(block).mlp.fc1.\(part)"] = ["\(layer).\(dinov2 ? "mlp.fc1" : "intermediate.dense").\(part)"]
                sources["\(block).mlp.fc2.\(part)"] = ["\(layer).\(dinov2 ? "mlp.fc2" : "output.dense").\(part)"]
            }
            if beit {
                let attention = "\(layer).attention.attention"
                sources["\(block).attn.qkv.bias"] = ["\(attention).query.bias", TensorStore.zeros, "\(attention).value.bias"]
                sources["\(block).ls1.gamma"] = ["\(layer).lambda_1"]
                sources["\(block).ls2.gamma"] = ["\(layer).lambda_2"]
                if relativeBias {
                    sources["\(block).attn.relative_position_bias_table"] = [
                        "\(attention).relative_position_bias.relative_position_bias_table"
                    ]
                }
            }
        }
        var store = TensorStore(file: safetensors, sources: sources)
        // Present in base-model files and masked-image-modelling checkpoints; classification never uses them.
        store.ignored = keys.filter { $0.hasPrefix("\(base)pooler.") || $0 == "\(base)embeddings.mask_token" }
        if meanPooling { store.ignored.subtract(keys.filter { $0.hasPrefix("\(base)pooler.") }) }

        guard let headShape = store.shape("head.weight") else {
            throw ViTError.missingWeight(path: files.weights, key: "\(headName).weight")
        }
        guard let numClasses = headShape.first else {
            throw ViTError.shapeMismatch(
                path: files.weights, key: "\(headName).weight", expected: [-1, embedDim], found: headShape)
        }
        var names: [String]? = nil
        if let id2label = try config.object("id2label") {
            var table: [Int: String] = [:]
            for (key, value) in id2label.values.sorted(by: { $0.key < $1.key }) {
                guard let index = Int(key), let label = value as? String else {
                    throw id2label.fail(key, "must map a class index to a label")
                }
                table[index] = label
            }
            if table.count == numClasses, (0..<numClasses).allSatisfy({ table[$0] != nil }) {
                names = (0..<numClasses).map { table[$0]! }
            } else if !(table.count == 2 && numClasses != 2) {  // transformers' default id2label is LABEL_0, LABEL_1
                throw ViTError.invalidConfiguration(
                    path: path, reason: "id2label has \(table.count) entries for \(numClasses) classes")
            }
        }
        let (labels, labelSource) = try resolveLabels(names, count: numClasses, configPath: path)

        var architecture = ViTArchitecture(
            embedDim: embedDim, depth: depth, heads: heads, mlpDim: mlpDim, patchSize: patchSize,
            channels: try config.int("num_channels") ?? 3,
            imageHeight: imageSize[0], imageWidth: imageSize.count > 1 ? imageSize[1] : imageSize[0], numClasses: numClasses,
            classToken: true, distillationToken: distillationToken, distillationHead: withTeacher, registerTokens: registers,
            positionEmbeddingIncludesPrefix: true, pooling: dinov2 ? .tokenAndAverage : meanPooling ? .average : .token,
            preNorm: false, finalNorm: !meanPooling, poolNorm: meanPooling,
            layerScale: (beit || dinov2) && store.contains("blocks.0.ls1.gamma"),
            qkvBias: beit || qkvBias, layerNormEps: Float(try config.double("layer_norm_eps") ?? 1e-12),
            activation: activation)
        architecture.absolutePositionEmbedding = absolutePosition
        architecture.relativePositionBias = relativeBias
        architecture.family = "Hugging Face \(modelType)"
        architecture.positionEmbeddingSkipsRegisters = registers > 0

        let (preprocessing, inputSize) = try Self.preprocessing(
            files.preprocessorConfig, modelType: modelType, imageSize: (architecture.imageHeight, architecture.imageWidth),
            anySize: dinov2, notes: &notes)
        var info = ModelInfo(
            name: files.name, weightsPath: files.weights, configPath: files.config,
            preprocessorConfigPath: files.preprocessorConfig, format: .huggingFace, variant: variant,
            architecture: architecture, nativeImageSize: (architecture.imageHeight, architecture.imageWidth),
            preprocessing: preprocessing, labels: labels, labelSource: labelSource,
            dtypes: Array(Set(safetensors.tensors.values.map(\.dtype.rawValue))).sorted(), notes: notes)
        if dinov2, inputSize != (architecture.imageHeight, architecture.imageWidth) {
            // interpolate_pos_encoding at the processor's size: bicubic without antialiasing (DINOv2), with it
            // (DINOv2 with registers), align_corners=False.
            guard inputSize.0 == inputSize.1 else {
                throw ViTError.invalidConfiguration(path: path, reason: "a non-square processor output is not supported for DINOv2")
            }
            info.positionEmbeddingTarget = (inputSize.0, registers > 0 || modelType == "dinov2_with_registers" ? .timm : .huggingFace)
        }
        return (info, store)
    }

    /// The image processor's recipe (`ViTImageProcessor`, `DeiTImageProcessor`), from `preprocessor_config.json` or
    /// the processor's defaults when there is none.
    static func preprocessing(
        _ path: String?, modelType: String, imageSize: (Int, Int), anySize: Bool = false, notes: inout [String]
    ) throws -> (Preprocessing, outputSize: (Int, Int)) {
        let deit = modelType == "deit"
        guard let path else {
            notes.append("no preprocessor_config.json: \(deit ? "DeiTImageProcessor" : "ViTImageProcessor") defaults assumed")
            let resize =
                deit
                ? (Int((Double(imageSize.0) * 256 / 224).rounded()), Int((Double(imageSize.1) * 256 / 224).rounded()))
                : imageSize
            return (
                Preprocessing(
                    resize: .exact(height: resize.0, width: resize.1), filter: deit ? .bicubic : .bilinear,
                    crop: deit ? imageSize : nil, cropRounding: .floor,
                    mean: deit ? [0.485, 0.456, 0.406] : [0.5, 0.5, 0.5], std: deit ? [0.229, 0.224, 0.225] : [0.5, 0.5, 0.5]),
                imageSize
            )
        }
        let config = try JSONObject(contentsOf: path)
        func size(_ key: String, default value: (Int, Int)) throws -> (Int, Int) {
            guard let object = try config.object(key) else {
                if let square = try config.int(key) { return (square, square) }
                return value
            }
            guard let h = try object.int("height"), let w = try object.int("width"), h > 0, w > 0, h <= 16384, w <= 16384 else {
                throw config.fail(key, "must have positive 'height' and 'width' (shortest_edge is not supported)")
            }
            return (h, w)
        }
        guard try config.bool("do_resize") ?? true else {
            throw config.fail("do_resize", "false is not supported: the image must be resized to the model's input")
        }
        // BitImageProcessor (DINOv2) resizes the shorter side: {"shortest_edge": S}.
        let shortest = anySize ? try config.object("size")?.int("shortest_edge") : nil
        let resize = shortest != nil ? (0, 0) : try size("size", default: deit ? (256, 256) : (224, 224))
        let crop = try config.bool("do_center_crop") ?? deit ? try size("crop_size", default: (224, 224)) : nil
        let code = try config.int("resample") ?? (deit ? 3 : 2)
        guard let filter = ResampleFilter(pilCode: code) else { throw config.fail("resample", "\(code) is not a PIL filter") }
        let normalize = try config.bool("do_normalize") ?? true
        let mean = normalize ? try config.doubles("image_mean") ?? (deit ? [0.485, 0.456, 0.406] : [0.5, 0.5, 0.5]) : [0, 0, 0]
        let std = normalize ? try config.doubles("image_std") ?? (deit ? [0.229, 0.224, 0.225] : [0.5, 0.5, 0.5]) : [1, 1, 1]
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else {
            throw config.fail("image_mean", "and image_std must be 3 numbers (std > 0)")
        }
        let rescale = try config.bool("do_rescale") ?? true ? try config.double("rescale_factor") ?? 1 / 255 : 1
        guard crop != nil || shortest == nil else {
            throw config.fail("do_center_crop", "must be true with a shortest_edge resize (the output size is unknown)")
        }
        let output = crop ?? resize
        guard anySize || output == imageSize else {
            throw ViTError.invalidConfiguration(
                path: path,
                reason: "the processor produces \(output.1)×\(output.0) images but the model takes \(imageSize.1)×\(imageSize.0)")
        }
        let preprocessing = Preprocessing(
            resize: shortest.map { .shorterSide($0) } ?? .exact(height: resize.0, width: resize.1), filter: filter, crop: crop,
            cropRounding: .floor, rescale: Float(rescale), mean: mean.map(Float.init), std: std.map(Float.init))
        return (preprocessing, output)
    }
}
