import Foundation

/// One class of a classification result.
public struct Prediction: Sendable, Equatable, Codable {
    public var rank: Int
    public var index: Int
    public var label: String
    public var probability: Double
    public var logit: Float
}

/// The result for one image: every class's logit, the top predictions, and the attention when requested.
public struct Classification: Sendable {
    public var logits: [Float]
    public var predictions: [Prediction]
    /// Every layer's and head's attention, when requested.
    public var attention: AttentionMaps?
}

/// The public facade: load a checkpoint once, then classify images, optionally with their attention.
///
/// ```swift
/// let classifier = try Classifier(modelPath: "weights/fashion-mnist-vit")
/// let image = try PNGDecoder.read("images/ankle-boot-1.png")
/// let result = classifier.classify([image], topK: 5)[0]
/// ```
/// Thread-safe: concurrent calls on one classifier are serialised (each already uses `threads` cores); classifiers
/// with different thread counts can run at once. The results are the same bits for any thread count and batch.
public final class Classifier: @unchecked Sendable {
    public let info: ModelInfo
    public let model: VisionTransformer
    /// Compute threads of every forward pass of this classifier.
    public let threads: Int
    private let lock = NSLock()
    private var workspace: Workspace?

    /// Loads a checkpoint (see ``Checkpoint/load(path:imageSize:)``).
    ///
    /// - Parameters:
    ///   - threads: compute threads for this classifier (`nil`: one per core).
    ///   - precision: the arithmetic of the linear layers (``Precision``; default fp32).
    public init(modelPath: String, imageSize: Int? = nil, threads: Int? = nil, precision: Precision = .fp32) throws {
        _ = Compute.prepared
        (info, model) = try Checkpoint.load(path: modelPath, imageSize: imageSize, precision: precision)
        self.threads = max(1, threads ?? Compute.defaultThreads)
    }

    /// The same with a named reduced-precision micro-kernel instead of this CPU's default (tests and benchmarks:
    /// `vk_q8_kernel_available`, `vk_bf16_kernel_available`).
    package init(modelPath: String, imageSize: Int? = nil, threads: Int? = nil, precision: Precision, kernel: String?) throws {
        _ = Compute.prepared
        (info, model) = try Checkpoint.load(path: modelPath, imageSize: imageSize, precision: precision, kernel: kernel)
        self.threads = max(1, threads ?? Compute.defaultThreads)
    }

    /// The precision of the linear layers.
    public var precision: Precision { model.precision }

    /// How this classifier's forward pass runs: kernel path, GEMM micro-kernel, threads, CPU.
    public var engineDescription: String {
        let gemm =
            precision == .fp32
            ? "packed GEMM \(Self.gemmKernel)"
            : "\(precision.rawValue) GEMM \(model.linearKernel) for the blocks' linear layers, packed fp32 GEMM \(Self.gemmKernel) elsewhere"
        return "\(Self.kernelPath) path (\(gemm); attention: OpenBLAS), \(threads) threads; "
            + "CPU \(Self.cpuModel); \(BLAS.configuration)"
    }

    /// The kernel path every layer runs on: `avx512`, `avx2` or `fallback` (narrowed by `VITCLASSIFY_ISA`).
    public static var kernelPath: String { Kernels.instructionSet }

    /// The GEMM micro-kernel in use, e.g. `avx2 6x16`.
    public static var gemmKernel: String { Kernels.gemmKernel }

    /// The CPU's model name.
    public static var cpuModel: String { Kernels.cpuModel }

    /// The model input for an image, `[channels][height][width]`, per the checkpoint's preprocessing.
    public func preprocess(_ image: RGBImage) -> [Float] {
        info.preprocessing.apply(to: image)
    }

    /// Logits for preprocessed inputs (`inputs.count` images, each `[channels][height][width]`).
    public func logits(preprocessed inputs: [[Float]], attention: Bool = false) -> (
        logits: [[Float]], attention: AttentionRecorder?
    ) {
        let a = model.architecture, count = inputs.count
        guard count > 0 else { return ([], nil) }
        let inputSize = a.channels * a.imageHeight * a.imageWidth
        precondition(inputs.allSatisfy { $0.count == inputSize }, "input size mismatch")
        let recorder = attention ? AttentionRecorder(images: count, layers: a.depth, heads: a.heads, tokens: a.tokens) : nil
        var flat = [Float]()
        flat.reserveCapacity(count * inputSize)
        for input in inputs { flat += input }
        var output = [Float](repeating: 0, count: count * a.numClasses)
        lock.lock()
        defer { lock.unlock() }
        if workspace == nil || workspace!.capacity < count {
            workspace = Workspace(architecture: a, capacity: count)
        }
        flat.withUnsafeBufferPointer { pixels in
            output.withUnsafeMutableBufferPointer { logits in
                model.forward(
                    pixels: pixels.baseAddress!, images: count, logits: logits.baseAddress!, workspace: workspace!,
                    recorder: recorder, threads: threads)
            }
        }
        return ((0..<count).map { Array(output[($0 * a.numClasses)..<(($0 + 1) * a.numClasses)]) }, recorder)
    }

    /// Classifies decoded images as one batch.
    ///
    /// - Parameters:
    ///   - topK: how many predictions to return per image, most probable first (0: every class).
    ///   - attention: also return every layer's and head's attention probabilities.
    public func classify(_ images: [RGBImage], topK: Int = 5, attention: Bool = false) -> [Classification] {
        let (allLogits, recorder) = logits(preprocessed: images.map(preprocess), attention: attention)
        return allLogits.enumerated().map { i, logits in
            Classification(
                logits: logits, predictions: Self.rank(logits, labels: info.labels, topK: topK),
                attention: recorder.map { AttentionMaps(probabilities: $0.attention(image: i), architecture: model.architecture) }
            )
        }
    }

    /// Softmax probabilities and the `topK` most probable classes (0: all), ties broken by class index.
    public static func rank(_ logits: [Float], labels: [String], topK: Int) -> [Prediction] {
        let maximum = logits.max() ?? 0
        let exps = logits.map { exp(Double($0) - Double(maximum)) }
        let total = exps.reduce(0, +)
        let order = logits.indices.sorted { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
        let k = topK <= 0 ? logits.count : min(topK, logits.count)
        return order.prefix(k).enumerated().map { rank, index in
            Prediction(rank: rank + 1, index: index, label: labels[index], probability: exps[index] / total, logit: logits[index])
        }
    }
}
