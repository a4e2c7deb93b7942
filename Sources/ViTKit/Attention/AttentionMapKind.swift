/// Which attention map to draw.
public enum AttentionMapKind: Sendable, Equatable, CustomStringConvertible {
    /// Attention rollout over every layer (Abnar & Zuidema 2020).
    case rollout
    /// The last layer's class-token attention (as DINO's `visualize_attention.py`).
    case last
    /// One layer's class-token attention (0-based).
    case layer(Int)

    /// Parses `rollout`, `last` or `layer:L`.
    public init?(_ text: String) {
        if text == "rollout" { self = .rollout; return }
        if text == "last" { self = .last; return }
        guard text.hasPrefix("layer:"), let l = Int(text.dropFirst(6)), l >= 0 else { return nil }
        self = .layer(l)
    }

    public var description: String {
        switch self {
        case .rollout: "rollout"
        case .last: "last"
        case .layer(let l): "layer:\(l)"
        }
    }
}
