/// How the heads of one layer are combined into one map.
public enum HeadSelection: Sendable, Equatable, CustomStringConvertible {
    case mean, max, min
    case head(Int)

    /// Parses `mean`, `max`, `min` or a head index.
    public init?(_ text: String) {
        switch text {
        case "mean": self = .mean
        case "max": self = .max
        case "min": self = .min
        default:
            guard let h = Int(text), h >= 0 else { return nil }
            self = .head(h)
        }
    }

    public var description: String {
        switch self {
        case .mean: "mean"
        case .max: "max"
        case .min: "min"
        case .head(let h): String(h)
        }
    }
}
