import Foundation

/// The one error type of ViTKit.
///
/// Every case carries the file (or tensor) it is about and a reason, so that its ``errorDescription`` is a single
/// line a user can act on.
public enum ViTError: Error, LocalizedError, Equatable, Sendable {
    /// A file could not be opened or read (missing, permission denied, is a directory, ...).
    case fileUnreadable(path: String, reason: String)
    /// A PNG file could not be decoded.
    case imageDecodingFailed(path: String, reason: String)
    /// A JPEG file could not be decoded (corrupt, truncated, unsupported).
    case jpegDecodingFailed(path: String, reason: String)
    /// A file is neither a PNG nor a JPEG (by its signature: the extension does not matter).
    case unknownImageFormat(path: String, reason: String)
    /// An image's width × height (from its header) is above the pixel limit.
    case imageTooLarge(path: String, width: Int, height: Int, limit: Int)
    /// A file could not be written.
    case writeFailed(path: String, reason: String)
    /// Writing would overwrite a file that must be kept (the input image, or an existing file without --force).
    case refusingToOverwrite(path: String, reason: String)
    /// A safetensors file is malformed.
    case invalidCheckpoint(path: String, reason: String)
    /// A configuration file (config.json, preprocessor_config.json) is malformed or inconsistent.
    case invalidConfiguration(path: String, reason: String)
    /// The model needs a tensor the checkpoint does not have.
    case missingWeight(path: String, key: String)
    /// A tensor's shape differs from what the configuration implies.
    case shapeMismatch(path: String, key: String, expected: [Int], found: [Int])
    /// The checkpoint has tensors the model does not use.
    case unusedWeights(path: String, keys: [String])
    /// No model was given and no default model was found.
    case modelNotFound(path: String, reason: String)
    /// An argument is out of range (image size not divisible by the patch size, ...).
    case invalidArgument(String)
    /// A Hugging Face Hub model (`ORG/NAME[@REVISION]`) could not be found, fetched or checked: HTTP status, no
    /// connection and nothing cached, offline and not cached, checksum mismatch, only pickled weights, ...
    case hub(model: String, file: String?, reason: String)

    public var errorDescription: String? {
        switch self {
        case .fileUnreadable(let path, let reason):
            return "\(path): cannot read file: \(reason)"
        case .imageDecodingFailed(let path, let reason):
            return "\(path): not a readable PNG: \(reason)"
        case .jpegDecodingFailed(let path, let reason):
            return "\(path): not a readable JPEG: \(reason)"
        case .unknownImageFormat(let path, let reason):
            return "\(path): \(reason); supported image formats: PNG, JPEG"
        case .imageTooLarge(let path, let width, let height, let limit):
            return "\(path): image is \(width)×\(height) = \(width * height) pixels, over the limit of \(limit)"
                + " (raise it with --max-pixels)"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write: \(reason)"
        case .refusingToOverwrite(let path, let reason):
            return "\(path): refusing to overwrite: \(reason)"
        case .invalidCheckpoint(let path, let reason):
            return "\(path): invalid safetensors checkpoint: \(reason)"
        case .invalidConfiguration(let path, let reason):
            return "\(path): invalid configuration: \(reason)"
        case .missingWeight(let path, let key):
            return "\(path): missing tensor '\(key)'"
        case .shapeMismatch(let path, let key, let expected, let found):
            return "\(path): tensor '\(key)' has shape \(found), expected \(expected)"
        case .unusedWeights(let path, let keys):
            let shown = keys.prefix(5).map { "'\($0.forMessage)'" }.joined(separator: ", ")
            let more = keys.count > 5 ? " and \(keys.count - 5) more" : ""
            return "\(path): \(keys.count) unexpected tensor(s) the model does not use: \(shown)\(more)"
        case .modelNotFound(let path, let reason):
            return "\(path): no model found: \(reason)"
        case .invalidArgument(let reason):
            return reason
        case .hub(let model, let file, let reason):
            return "\(model.forMessage)\(file.map { ": \($0.forMessage)" } ?? ""): \(reason)"
        }
    }
}
