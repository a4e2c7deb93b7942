/// What was loaded: where from, which dialect, the architecture, how to preprocess, the labels.
package struct ModelInfo: Sendable {
    package enum Format: String, Sendable {
        case timm
        case huggingFace = "huggingface"
    }

    /// A short name (the model folder's name), used in JSON output.
    package var name: String
    package var weightsPath: String
    package var configPath: String
    package var preprocessorConfigPath: String?
    package var format: Format
    /// The class the checkpoint was written from (e.g. `VisionTransformerDistilled`, `ViTForImageClassification`).
    package var variant: String
    package var architecture: ViTArchitecture
    /// The input size the checkpoint was trained at (before any `--image-size`).
    package var nativeImageSize: (height: Int, width: Int)
    package var preprocessing: Preprocessing
    package var labels: [String]
    /// Where the labels came from (config, built-in ImageNet-1k list, or generated).
    package var labelSource: String
    /// Tensor data types found in the file (e.g. `F32`, `F16`).
    package var dtypes: [String]
    /// Facts about how the configuration was interpreted (defaults assumed, values inferred from shapes).
    package var notes: [String]
    /// The input size the position embeddings are resampled to at load, and how, when the checkpoint's library does
    /// so at every forward pass (Hugging Face DINOv2 runs its configured grid at the processor's crop size).
    var positionEmbeddingTarget: (size: Int, method: PositionEmbeddingResampling)? = nil
}
