/// How similarity is measured. Internally every score is a *distance* (lower is better):
/// inner product becomes its negation, cosine is inner product on normalised vectors.
public enum Metric: String, Sendable, Codable, CaseIterable {
    case innerProduct = "ip"
    case l2 = "l2"
    case cosine = "cosine"

    /// Whether vectors and queries are L2-normalised on the way in.
    public var normalizesInput: Bool { self == .cosine }

    /// Whether distances come from inner products (IP and cosine).
    public var usesInnerProduct: Bool { self != .l2 }

    /// The score a user sees for an internal distance: the inner product (cosine similarity)
    /// for IP and cosine, the squared L2 distance for L2.
    @inlinable
    public func score(fromDistance distance: Float) -> Float {
        usesInnerProduct ? -distance : distance
    }

    public init?(name: String) {
        switch name.lowercased() {
        case "ip", "dot", "inner_product", "innerproduct", "mips": self = .innerProduct
        case "l2", "euclidean": self = .l2
        case "cosine", "cos", "angular": self = .cosine
        default: return nil
        }
    }
}
