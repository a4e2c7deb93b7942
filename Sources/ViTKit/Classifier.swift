import Foundation

/// Loads a Vision Transformer checkpoint once, then classifies images, optionally with their attention.
///
/// ```swift
/// let classifier = try Classifier(contentsOf: "weights/fashion-mnist-vit")
/// let result = try classifier.classify(contentsOf: "images/ankle-boot-1.png")
/// print(result.predictions[0].label, result.predictions[0].probability)
/// ```
/// Thread-safe: concurrent calls on one classifier are serialised (each already uses ``threads`` cores); classifiers
/// with different options can run at once in one process. The results are the same bits for any thread count and
/// for any batch an image is part of.
public final class Classifier: @unchecked Sendable {
    /// Settings of one classifier; nothing here is process-wide.
    public struct Options: Sendable {
        /// Compute threads of every forward pass (`nil`: one per core).
        public var threads: Int?
        /// Run at this input size (pixels, square), resampling the position embeddings as the checkpoint's library
        /// does (`nil`: the checkpoint's own size).
        public var imageSize: Int?
        /// The arithmetic of the linear layers (fp32 by default; ``Precision``).
        public var precision: Precision
        /// How ``Classifier/classify(contentsOf:topK:attention:)`` reads image files.
        public var imageReading: ImageReadOptions

        public init(
            threads: Int? = nil, imageSize: Int? = nil, precision: Precision = .fp32,
            imageReading: ImageReadOptions = ImageReadOptions()
        ) {
            self.threads = threads
            self.imageSize = imageSize
            self.precision = precision
            self.imageReading = imageReading
        }
    }

    package let info: ModelInfo
    package let model: VisionTransformer
    /// Compute threads of every forward pass of this classifier.
    public let threads: Int
    /// How image files are read by ``classify(contentsOf:topK:attention:)``.
    public private(set) var imageReading = ImageReadOptions()
    private let lock = NSLock()

    /// Loads a checkpoint: a folder with `model.safetensors` and `config.json` (timm or Hugging Face), a
    /// `.safetensors` file with `config.json` beside it, or a Hugging Face Hub id `ORG/NAME[@REVISION]`, read from
    /// (and downloaded into) the cache the Python libraries share.
    ///
    /// - Throws: ``ViTError`` naming the file and the reason (missing, broken, wrong shapes, unsupported).
    public convenience init(contentsOf model: String, options: Options = Options()) throws(ViTError) {
        if let threads = options.threads, threads < 1 {
            throw .invalidArgument("the thread count must be at least 1, not \(threads)")
        }
        if let size = options.imageSize, size < 1 {
            throw .invalidArgument("the image size must be at least 1 pixel, not \(size)")
        }
        do {
            try self.init(modelPath: model, imageSize: options.imageSize, threads: options.threads, precision: options.precision)
        } catch let error as ViTError {
            throw error
        } catch {
            throw .modelNotFound(path: model, reason: "\(error)")
        }
        imageReading = options.imageReading
    }

    /// The model's name (its folder's, or the Hub id).
    public var modelName: String { info.name }

    /// The class labels, in the model's class order.
    public var labels: [String] { info.labels }
    private var workspace: Workspace?

    /// Loads a checkpoint (see ``Checkpoint/load(path:imageSize:)``).
    ///
    /// - Parameters:
    ///   - threads: compute threads for this classifier (`nil`: one per core).
    ///   - precision: the arithmetic of the linear layers (``Precision``; default fp32).
    package init(modelPath: String, imageSize: Int? = nil, threads: Int? = nil, precision: Precision = .fp32) throws {
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
            : "\(precision.rawValue) GEMM \(model.linearKernel)\(model.reducedRange ? " (7-bit weights and activations)" : "") for the blocks' linear layers, "
                + "packed fp32 GEMM \(Self.gemmKernel) elsewhere"
        return "\(Self.kernelPath) path (\(gemm); attention products on the fp32 micro-kernels), "
            + "\(threads) threads; CPU \(Self.cpuModel); explanations: \(BLAS.configuration)"
    }

    /// The kernel path every layer runs on: `avx512`, `avx2` or `fallback` (narrowed by `VITCLASSIFY_ISA`).
    package static var kernelPath: String { Kernels.instructionSet }

    /// The GEMM micro-kernel in use, e.g. `avx2 6x16`.
    package static var gemmKernel: String { Kernels.gemmKernel }

    /// The CPU's model name.
    package static var cpuModel: String { Kernels.cpuModel }

    /// The model input for an image, `[channels][height][width]`, per the checkpoint's preprocessing.
    package func preprocess(_ image: RGBImage) -> [Float] {
        info.preprocessing.apply(to: image)
    }

    /// Logits for preprocessed inputs (`inputs.count` images, each `[channels][height][width]`).
    package func logits(preprocessed inputs: [[Float]], attention: Bool = false) -> (
        logits: [[Float]], attention: AttentionRecorder?
    ) {
        let a = model.architecture, count = inputs.count
        guard count > 0 else { return ([], nil) }
        let recorder = attention ? AttentionRecorder(images: count, layers: a.depth, heads: a.heads, tokens: a.tokens) : nil
        lock.lock()
        defer { lock.unlock() }
        return (model.logits(preprocessed: inputs, workspace: &workspace, recorder: recorder, threads: threads), recorder)
    }

    /// Classifies one image.
    ///
    /// - Parameters:
    ///   - image: the decoded image, any size (it is preprocessed as the checkpoint's library does).
    ///   - topK: how many predictions to return, most probable first (0: every class).
    ///   - attention: also return every layer's and head's attention probabilities.
    public func classify(_ image: RGBImage, topK: Int = 5, attention: Bool = false) -> Classification {
        classify([image], topK: topK, attention: attention)[0]
    }

    /// Reads a PNG or JPEG file (``imageReading``) and classifies it.
    ///
    /// - Throws: ``ViTError`` naming the file and the reason when it cannot be read as an image.
    public func classify(contentsOf path: String, topK: Int = 5, attention: Bool = false) throws(ViTError) -> Classification {
        classify(try RGBImage(contentsOf: path, options: imageReading), topK: topK, attention: attention)
    }

    /// Classifies decoded images as one batch (the result of each is the same bits as classifying it alone).
    ///
    /// - Parameters:
    ///   - images: decoded images, any sizes.
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
    package static func rank(_ logits: [Float], labels: [String], topK: Int) -> [Prediction] {
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

extension VisionTransformer {
    /// The logits of preprocessed inputs (`[channels][height][width]` each) as one batch, through `workspace` (grown to
    /// fit). The caller serialises the workspace's use.
    func logits(preprocessed inputs: [[Float]], workspace: inout Workspace?, recorder: AttentionRecorder?, threads: Int) -> [[Float]] {
        let a = architecture, count = inputs.count
        guard count > 0 else { return [] }
        let inputSize = a.channels * a.imageHeight * a.imageWidth
        precondition(inputs.allSatisfy { $0.count == inputSize }, "input size mismatch")
        var flat = [Float]()
        flat.reserveCapacity(count * inputSize)
        for input in inputs { flat += input }
        var output = [Float](repeating: 0, count: count * a.numClasses)
        if workspace == nil || workspace!.capacity < count {
            workspace = Workspace(architecture: a, capacity: count)
        }
        let space = workspace!
        flat.withUnsafeBufferPointer { pixels in
            output.withUnsafeMutableBufferPointer { logits in
                forward(
                    pixels: pixels.baseAddress!, images: count, logits: logits.baseAddress!, workspace: space,
                    recorder: recorder, threads: threads)
            }
        }
        return (0..<count).map { Array(output[($0 * a.numClasses)..<(($0 + 1) * a.numClasses)]) }
    }
}
