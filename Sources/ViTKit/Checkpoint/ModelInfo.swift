/// What was loaded: where from, which dialect, the architecture, how to preprocess, the labels.
public struct ModelInfo: Sendable {
    public enum Format: String, Sendable {
        case timm
        case huggingFace = "huggingface"
    }

    /// A short name (the model folder's name), used in JSON output.
    public var name: String
    public var weightsPath: String
    public var configPath: String
    public var preprocessorConfigPath: String?
    public var format: Format
    /// The class the checkpoint was written from (e.g. `VisionTransformerDistilled`, `ViTForImageClassification`).
    public var variant: String
    public var architecture: ViTArchitecture
    /// The input size the checkpoint was trained at (before any `--image-size`).
    public var nativeImageSize: (height: Int, width: Int)
    public var preprocessing: Preprocessing
    public var labels: [String]
    /// Where the labels came from (config, built-in ImageNet-1k list, or generated).
    public var labelSource: String
    /// Tensor data types found in the file (e.g. `F32`, `F16`).
    public var dtypes: [String]
    /// Facts about how the configuration was interpreted (defaults assumed, values inferred from shapes).
    public var notes: [String]
    /// The input size the position embeddings are resampled to at load, and how, when the checkpoint's library does
    /// so at every forward pass (Hugging Face DINOv2 runs its configured grid at the processor's crop size).
    var positionEmbeddingTarget: (size: Int, method: PositionEmbeddingResampling)? = nil
}
