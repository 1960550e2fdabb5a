/// How an inverted list stores its vectors.
public enum ListEncoding: String, Sendable, Codable, CaseIterable {
    /// Raw float32 vectors, scanned exactly (IVF_FLAT).
    case flat
    /// 8-bit PQ codes (256 centers per subspace), float look-up tables (IVF_PQ).
    case pq8
    /// 4-bit PQ codes in 32-vector FastScan blocks, uint8 look-up tables, SIMD shuffles.
    case fastScan
}

/// Precision of the raw vectors kept beside the codes for exact re-ranking.
public enum RawVectorPrecision: String, Sendable, Codable, CaseIterable {
    case none
    case float32
    case float16

    public var bytesPerComponent: Int {
        switch self {
        case .none: 0
        case .float32: 4
        case .float16: 2
        }
    }

    /// The precision for raw vectors when the collection names none: float16, half the memory
    /// (measured: the same recall@10 as float32 on pkgdesc and on pkgdesc rows with log-normal
    /// norms; 0.0005–0.0008 lower at re-rank 100 on clustered synthetic L2 data, whose neighbours
    /// lie within 1% of each other), unless the rows do not survive the conversion: a value
    /// beyond float16's range, or, in more than 1% of up to 4,096 sample rows (evenly spaced),
    /// a rounding error above 2⁻¹⁰ of the row's distance to the sample mean (values so small that
    /// float16 loses precision, or large values that vary little). Real embeddings round at about
    /// 2⁻¹² of it, integer data (SIFT) exactly.
    /// For a `metric` collection the rows checked are first prepared (normalised for cosine) as
    /// the index will store them; the other rows are not touched.
    public static func automatic(for sample: Matrix, metric: Metric? = nil) -> RawVectorPrecision {
        let d = sample.dimension
        guard sample.rows > 0, d > 0 else { return .float16 }
        let stride = max(1, sample.rows / 4096)
        var rows = sample.gathering(Array(Swift.stride(from: 0, to: sample.rows, by: stride).prefix(4096)))
        if metric?.normalizesInput == true { rows.normalizeRows() }
        var mean = [Double](repeating: 0, count: d)
        var halves = [UInt16](repeating: 0, count: d)
        var rounded = [Float](repeating: 0, count: d)
        return rows.values.withUnsafeBufferPointer { values in
            for row in 0 ..< rows.rows {
                for j in 0 ..< d { mean[j] += Double(values[row * d + j]) }
            }
            for j in 0 ..< d { mean[j] /= Double(rows.rows) }
            var failing = 0
            for row in 0 ..< rows.rows {
                let x = values.baseAddress! + row * d
                Kernels.floatToHalf(x, &halves, count: d)
                Kernels.halfToFloat(halves, &rounded, count: d)
                var error = 0.0, spread = 0.0
                for j in 0 ..< d {
                    guard rounded[j].isFinite else { return .float32 }
                    let e = Double(x[j] - rounded[j]), s = Double(x[j]) - mean[j]
                    error += e * e
                    spread += s * s
                }
                if error > 0x1p-20 * spread { failing += 1 }
            }
            return failing * 100 > rows.rows ? .float32 : .float16
        }
    }
}

/// Everything that shapes a trained IVF model and the lists built on it.
public struct IVFConfiguration: Sendable, Equatable, Codable {
    public var dimension: Int
    public var metric: Metric
    /// Number of inverted lists (coarse centroids).
    public var nlist: Int
    public var encoding: ListEncoding
    /// PQ subspaces (`m`); `dimension` must be divisible by it.
    public var subspaces: Int
    /// Score-aware quantization threshold `t` (inner product only) as a fraction of each
    /// vector's norm, 0 < t < 1: quantization error parallel to a vector weighs
    /// η = (d − 1)·t²/(1 − t²) times the orthogonal error. nil turns it off.
    public var anisotropicThreshold: Float?
    /// SOAR spilling weight λ: each vector is also stored in a second, orthogonality-amplified
    /// list. nil turns spilling off.
    public var spillLambda: Float?
    public var rawVectors: RawVectorPrecision
    public var trainingIterations: Int
    /// k-means iterations when a configuration names none.
    public static let defaultTrainingIterations = 20
    public var seed: UInt64
    /// Spherical k-means (unit centroids, inner-product assignment); nil chooses it for inner
    /// product metrics when the training sample is unit-norm.
    public var spherical: Bool?

    public init(dimension: Int, metric: Metric, nlist: Int, encoding: ListEncoding = .fastScan,
                subspaces: Int? = nil, anisotropicThreshold: Float? = nil, spillLambda: Float? = nil,
                rawVectors: RawVectorPrecision = .float32, trainingIterations: Int = defaultTrainingIterations, seed: UInt64 = 1,
                spherical: Bool? = nil) {
        self.dimension = dimension
        self.metric = metric
        self.nlist = nlist
        self.encoding = encoding
        self.subspaces = subspaces ?? IVFConfiguration.defaultSubspaces(dimension: dimension, encoding: encoding)
        self.anisotropicThreshold = anisotropicThreshold
        self.spillLambda = spillLambda
        self.rawVectors = encoding == .flat ? .none : rawVectors
        self.trainingIterations = trainingIterations
        self.seed = seed
        self.spherical = spherical
    }

    /// `d/2` subspaces for 4-bit codes (2 dimensions each, 1/16 of float32), `d/4` for 8-bit.
    public static func defaultSubspaces(dimension: Int, encoding: ListEncoding) -> Int {
        switch encoding {
        case .flat: return 1
        case .fastScan: return dimension % 2 == 0 ? dimension / 2 : dimension
        case .pq8: return dimension % 4 == 0 ? dimension / 4 : (dimension % 2 == 0 ? dimension / 2 : dimension)
        }
    }

    /// Anisotropic threshold used when none is given for inner product and cosine. On unit-norm
    /// text embeddings (384-d) t = 0.1 (η ≈ 3.9) gains about a point of recall@10 over plain PQ
    /// at the same code size, while the 0.2 often quoted (η ≈ 16) loses a little; the same holds
    /// for those rows with log-normal norms. Clustered 128-d data gains most at 0.2–0.3 (η 5–13),
    /// and 0.1 still gains there: see bench/results/anisotropic.md.
    public static let defaultAnisotropicThreshold: Float = 0.1

    /// `2·√n`, the usual list count for `n` vectors, at least 1.
    public static func defaultListCount(vectors: Int) -> Int {
        max(1, Int((2 * Double(vectors).squareRoot()).rounded()))
    }

    public var bitsPerCode: Int { encoding == .pq8 ? 8 : 4 }

    /// Subspaces rounded up to even: FastScan pairs subspaces in one 256-bit register.
    public var paddedSubspaces: Int { subspaces + (subspaces & 1) }

    /// Checks the settings against each other; the message says what to change.
    public func validate() throws(IndexError) {
        guard dimension > 0 else { throw .invalidConfiguration("dimension must be positive, got \(dimension)") }
        guard nlist > 0 else { throw .invalidConfiguration("nlist must be positive, got \(nlist)") }
        if encoding != .flat {
            guard subspaces > 0, dimension % subspaces == 0 else {
                throw .invalidConfiguration("dimension \(dimension) must be divisible by the number of PQ subspaces m=\(subspaces)")
            }
        }
        if let threshold = anisotropicThreshold {
            guard metric.usesInnerProduct else {
                throw .invalidConfiguration("anisotropic quantization applies to inner product and cosine, not \(metric.rawValue)")
            }
            guard threshold > 0, threshold < 1 else {
                throw .invalidConfiguration("anisotropic threshold is a fraction of each vector's norm and must lie in (0, 1), got \(threshold)")
            }
        }
        if let lambda = spillLambda {
            guard lambda >= 0, lambda.isFinite else { throw .invalidConfiguration("spill lambda must be ≥ 0, got \(lambda)") }
        }
    }
}

/// Errors of the index layer: invalid settings or inputs, named so a user can fix them.
public enum IndexError: Error, Equatable, CustomStringConvertible {
    case invalidConfiguration(String)
    case dimensionMismatch(expected: Int, got: Int)
    case notEnoughTrainingData(needed: Int, got: Int)
    case invalidParameter(String)
    case invalidVector(row: Int, column: Int, value: Float)
    /// A component too large for float16 raw vectors (|v| ≥ 65520 rounds to ±∞).
    case outOfHalfRange(row: Int, column: Int, value: Float)

    public var description: String {
        switch self {
        case .invalidConfiguration(let message): "invalid index configuration: \(message)"
        case .dimensionMismatch(let expected, let got): "dimension mismatch: expected \(expected), got \(got)"
        case .notEnoughTrainingData(let needed, let got): "not enough training vectors: need at least \(needed), got \(got)"
        case .invalidParameter(let message): "invalid search parameter: \(message)"
        case .invalidVector(let row, let column, let value): "vector \(row) has a non-finite value \(value) at component \(column)"
        case .outOfHalfRange(let row, let column, let value):
            "vector \(row) has value \(value) at component \(column), beyond what float16 raw vectors hold (|v| < 65520); "
                + "store raw vectors as float32 or scale the data"
        }
    }
}
