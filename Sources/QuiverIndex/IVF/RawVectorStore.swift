import CQuiverKernels

/// Raw vectors kept for exact re-ranking, by row, as float32 or float16, in one contiguous
/// buffer that grows without copying what it holds (`GrowableBytes`).
public struct RawVectorStore: Sendable, Equatable {
    public let precision: RawVectorPrecision
    public let dimension: Int
    private var bytes = GrowableBytes()

    public init(precision: RawVectorPrecision, dimension: Int, floats: [Float] = [], halves: [UInt16] = []) {
        self.precision = precision
        self.dimension = dimension
        switch precision {
        case .none: break
        case .float32: bytes = floats.withUnsafeBytes { GrowableBytes($0) }
        case .float16: bytes = halves.withUnsafeBytes { GrowableBytes($0) }
        }
    }

    public var memoryBytes: Int { bytes.count }
    /// Rows held.
    public var count: Int { elementBytes == 0 || dimension == 0 ? 0 : bytes.count / (elementBytes * dimension) }
    private var elementBytes: Int {
        switch precision {
        case .none: 0
        case .float32: 4
        case .float16: 2
        }
    }

    /// The stored values as bytes: `count × dimension` float32 or float16 values, little-endian.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }

    /// Largest magnitude that survives conversion to float16: 65520 and above round to ±∞.
    public static let halfLimit: Float = 65520

    /// Refuses vectors that float16 cannot hold, instead of storing ±∞ (a re-rank would then drop
    /// the vector silently).
    static func checkHalfRange(_ vectors: Matrix) throws(IndexError) {
        var outside: UInt8 = 0  // one pass without early exit (it vectorises); NaN counts as outside
        for value in vectors.values { outside |= abs(value) < halfLimit ? 0 : 1 }
        guard outside != 0, let bad = vectors.values.firstIndex(where: { !(abs($0) < halfLimit) }) else { return }
        throw .outOfHalfRange(row: bad / vectors.dimension, column: bad % vectors.dimension, value: vectors.values[bad])
    }

    mutating func append(_ vectors: UnsafePointer<Float>, count: Int) {
        let values = count * dimension
        switch precision {
        case .none: break
        case .float32:
            bytes.append(byteCount: values * 4) { $0.copyMemory(from: vectors, byteCount: values * 4) }
        case .float16:
            bytes.append(byteCount: values * 2) { Kernels.floatToHalf(vectors, $0.assumingMemoryBound(to: UInt16.self), count: values) }
        }
    }

    /// Overwrites the vector of `row` (a repair brings a newer copy of the same id).
    mutating func set(row: Int, _ vector: UnsafePointer<Float>) {
        let dimension = dimension
        switch precision {
        case .none: break
        case .float32:
            bytes.withUnsafeMutableBytes { ($0.baseAddress! + row * dimension * 4).copyMemory(from: vector, byteCount: dimension * 4) }
        case .float16:
            bytes.withUnsafeMutableBytes {
                Kernels.floatToHalf(vector, $0.baseAddress!.assumingMemoryBound(to: UInt16.self) + row * dimension, count: dimension)
            }
        }
    }

    /// The vector of `row` as float32 (float16 widened exactly).
    public func vector(row: Int) -> [Float] {
        matrix(rows: row ..< row + 1).values
    }

    /// Stored rows as float32 (float16 widened exactly); none kept gives an empty matrix.
    public func matrix(rows: Range<Int>) -> Matrix {
        switch precision {
        case .none:
            return Matrix(rows: 0, dimension: dimension, values: [])
        case .float32:
            let values = bytes.withUnsafeBytes {
                Array($0.bindMemory(to: Float.self)[rows.lowerBound * dimension ..< rows.upperBound * dimension])
            }
            return Matrix(rows: rows.count, dimension: dimension, values: values)
        case .float16:
            var values = [Float](repeating: 0, count: rows.count * dimension)
            bytes.withUnsafeBytes { raw in
                let h = raw.bindMemory(to: UInt16.self)
                values.withUnsafeMutableBufferPointer {
                    Kernels.halfToFloat(h.baseAddress! + rows.lowerBound * dimension, $0.baseAddress!, count: rows.count * dimension)
                }
            }
            return Matrix(rows: rows.count, dimension: dimension, values: values)
        }
    }

    /// Exact distances between a prepared query and stored rows (−1: +∞), in `distances`.
    func distances(query: UnsafePointer<Float>, rows: UnsafePointer<Int64>, count: Int, metric: Metric,
                   into distances: UnsafeMutablePointer<Float>) {
        let innerProduct: Int32 = metric.usesInnerProduct ? 1 : 0
        switch precision {
        case .none:
            for i in 0 ..< count { distances[i] = .infinity }
        case .float32:
            bytes.withUnsafeBytes { quiver_rerank(query, $0.baseAddress, 0, dimension, rows, count, innerProduct, distances) }
        case .float16:
            bytes.withUnsafeBytes { quiver_rerank(query, $0.baseAddress, 1, dimension, rows, count, innerProduct, distances) }
        }
    }
}
