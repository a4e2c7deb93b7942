import Foundation

/// One class of a classification result.
public struct Prediction: Sendable, Equatable, Codable {
    /// 1 for the most probable class.
    public var rank: Int
    /// The class's index in the model's output.
    public var index: Int
    public var label: String
    /// Softmax probability over all classes.
    public var probability: Double
    /// The raw score before the softmax.
    public var logit: Float
}
