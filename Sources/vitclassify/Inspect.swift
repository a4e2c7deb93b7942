import ArgumentParser
import Foundation
import ViTKit

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a checkpoint: format, dimensions, token layout, preprocessing, labels.",
        discussion: "With --tensors, also lists every tensor in the safetensors header (name, dtype, shape).")

    @Argument(
        help: ArgumentHelp(
            "Model folder, .safetensors file, or Hugging Face Hub model ORG/NAME[@REVISION] (default: the shipped model).",
            valueName: "model"))
    var model: String?

    @Option(name: .long, help: ArgumentHelp("Describe the model as run at this input size.", valueName: "S"))
    var imageSize: Int?

    @Flag(name: .long, help: "List every tensor in the safetensors header.")
    var tensors = false

    @Option(name: .long, help: ArgumentHelp("Describe the model as run in this precision: fp32, bf16 or int8.", valueName: "p"))
    var precision: Precision = .fp32

    @Option(name: .long, help: "Output format: text or json.")
    var format: OutputFormat = .text

    func run() throws {
        var arguments = ModelArguments()
        arguments.model = model
        let path = try arguments.resolvedPath()
        let classifier = try Classifier(modelPath: path, imageSize: imageSize, precision: precision)
        let info = classifier.info, a = info.architecture
        let prefix = [
            a.classToken ? "cls" : nil, a.distillationToken ? "dist" : nil,
            a.registerTokens > 0 ? "\(a.registerTokens) registers" : nil,
        ].compactMap { $0 }
        let pooling: String
        switch a.pooling {
        case .token: pooling = a.distillationHead ? "class token + distillation token (mean of both heads)" : "class token"
        case .average: pooling = "mean over patch tokens" + (a.poolNorm ? " + fc_norm" : "")
        case .tokenAndAverage: pooling = "class token beside the mean over patch tokens (2·D into the head)"
        case .attentionPool:
            pooling = "attention pool (MAP: a learned query over the \(a.attentionPoolIncludesPrefix ? "tokens" : "patch tokens"), then + MLP(LN))"
        }
        let attentionSource =
            a.classToken
            ? "class-token query row" : "mean over patch queries (no class token)"
        let header = try SafeTensorsFile(path: info.weightsPath)
        let activation: String =
            switch a.activation {
            case .gelu: "GELU (erf)"
            case .geluTanh: "GELU (tanh)"
            case .quickGELU: "QuickGELU"
            case .silu: "SiLU"
            }
        let mlp = a.mlp == .gated ? "gated \(activation) (\(a.activation == .silu ? "SwiGLU" : "GLU")), hidden \(a.mlpDim)" : "\(activation), hidden \(a.mlpDim)"
        var positions: [String] = []
        if a.absolutePositionEmbedding {
            positions.append("learned, over \(a.positionEmbeddingIncludesPrefix ? "all tokens" : "patches only (no_embed_class)")")
        }
        if let r = a.rotary, r.learnedFrequencies {
            positions.append("2-D RoPE-Mixed on Q and K of the patches (learned frequencies per block and head, \(r.rowFirst ? "ij" : "xy"))")
        } else if let r = a.rotary {
            positions.append(
                "2-D RoPE on Q and K of the patches (\(r.rowFirst ? "ij" : "xy"), temperature \(r.temperature), offset \(r.gridOffset)"
                    + (r.referenceGrid.map { ", reference grid \($0[0])×\($0[1])" } ?? "") + ")")
        }
        if a.relativePositionBias { positions.append("relative position bias per block") }
        let position = positions.isEmpty ? "none" : positions.joined(separator: " + ")
        let blockChoices = [
            a.block.rawValue, "LayerNorm eps \(a.layerNormEps)", a.layerScale ? "LayerScale" : nil, a.qkvBias ? nil : "no qkv bias",
            a.preNorm ? "norm_pre" : nil, a.patchEmbeddingBias ? nil : "no patch-embedding bias",
            a.attentionNorm ? "sub-LN before proj" : nil, a.mlpNorm ? "sub-LN before fc2" : nil,
        ].compactMap { $0 }.joined(separator: ", ")
        if format == .json {
            var members: [(String, JSONValue)] = [
                ("model", .string(info.name)), ("path", .string(info.weightsPath)), ("format", .string(info.format.rawValue)),
                ("variant", .string(info.variant)), ("embed_dim", .int(a.embedDim)), ("depth", .int(a.depth)),
                ("heads", .int(a.heads)), ("mlp_dim", .int(a.mlpDim)), ("patch_size", .int(a.patchSize)),
                ("image_size", .array([.int(a.imageHeight), .int(a.imageWidth)])),
                ("grid", .array([.int(a.gridHeight), .int(a.gridWidth)])), ("prefix_tokens", .int(a.prefixTokens)),
                ("tokens", .int(a.tokens)), ("pooling", .string(pooling)), ("attention_maps", .string(attentionSource)),
                ("family", .string(a.family)), ("block", .string(a.block.rawValue)), ("mlp", .string(mlp)),
                ("position_embedding", .string(position)),
                ("layer_norm_eps", .float(a.layerNormEps)), ("classes", .int(a.numClasses)),
                ("labels", .string(info.labelSource)), ("preprocessing", .string(info.preprocessing.summary)),
                ("parameters", .int(header.tensors.values.map(\.elementCount).reduce(0, +))),
                ("gmacs", .double(Double(a.macsPerImage) / 1e9)), ("dtypes", .array(info.dtypes.map(JSONValue.string))),
                ("notes", .array(info.notes.map(JSONValue.string))),
                ("kernel_path", .string(Classifier.kernelPath)), ("gemm_kernel", .string(Classifier.gemmKernel)),
                ("cpu_model", .string(Classifier.cpuModel)), ("threads", .int(classifier.threads)),
                ("precision", .string(classifier.precision.rawValue)), ("linear_kernel", .string(classifier.model.linearKernel)),
            ]
            if tensors {
                members.append(
                    (
                        "tensors",
                        .array(
                            header.tensors.values.sorted { $0.name < $1.name }.map {
                                .object([
                                    ("name", .string($0.name)), ("dtype", .string($0.dtype.rawValue)),
                                    ("shape", .array($0.shape.map(JSONValue.int))),
                                ])
                            })
                    ))
            }
            print(JSONValue.object(members).rendered)
            return
        }
        let parameters = header.tensors.values.map(\.elementCount).reduce(0, +)
        print(
            """
            model:          \(info.name)  (\(info.weightsPath))
            format:         \(info.format.rawValue), \(info.variant); tensors \(info.dtypes.joined(separator: ", "))
            dimensions:     embed \(a.embedDim), depth \(a.depth), heads \(a.heads) (head dim \(a.headDim)), MLP \(a.mlpDim), patch \(a.patchSize)
            input:          \(a.channels)×\(a.imageHeight)×\(a.imageWidth) → grid \(a.gridHeight)×\(a.gridWidth) = \(a.patchCount) patches
            family:         \(a.family)
            tokens:         \(a.tokens) = \(prefix.isEmpty ? "no prefix tokens" : prefix.joined(separator: " + ")) + \(a.patchCount) patches
            position:       \(position)
            blocks:         \(blockChoices)
            MLP:            \(mlp)
            pooling:        \(pooling)
            attention maps: \(attentionSource)
            classes:        \(a.numClasses), labels: \(info.labelSource)
            preprocessing:  \(info.preprocessing.summary)
            size:           \(parameters) parameters, \(String(format: "%.3f", Double(a.macsPerImage) / 1e9)) GMACs per image
            engine:         \(classifier.engineDescription)
            """)
        for note in info.notes { print("note:           \(note)") }
        if tensors {
            for t in header.tensors.values.sorted(by: { $0.name < $1.name }) {
                print("  \(t.name)  \(t.dtype.rawValue)  \(t.shape)")
            }
        }
    }
}
