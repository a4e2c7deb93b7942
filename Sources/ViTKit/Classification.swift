import Foundation

/// The result for one image: every class's logit, the top predictions, and the attention when requested.
public struct Classification: Sendable {
    /// One per class, in the model's class order.
    public var logits: [Float]
    /// The most probable classes, most probable first.
    public var predictions: [Prediction]
    /// Every layer's and head's attention, when requested.
    public var attention: AttentionMaps?
}
