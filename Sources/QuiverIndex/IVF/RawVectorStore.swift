import CQuiverKernels

/// Raw vectors kept for exact re-ranking, by row, as float32 or float16.
public struct RawVectorStore: Sendable, Equatable {
    public let precision: RawVectorPrecision
    public let dimension: Int
    public private(set) var floats: [Float] = []
    public private(set) var halves: [UInt16] = []

    public init(precision: RawVectorPrecision, dimension: Int, floats: [Float] = [], halves: [UInt16] = []) {
        self.precision = precision
        self.dimension = dimension
        self.floats = floats
        self.halves = halves
    }

    public var memoryBytes: Int { floats.count * 4 + halves.count * 2 }

    /// Largest magnitude that survives conversion to float16: 65520 and above round to ±∞.
    public static let halfLimit: Float = 65520

    /// Refuses vectors that float16 cannot hold, instead of storing ±∞ (a re-rank would then drop
    /// the vector silently).
    static func checkHalfRange(_ vectors: Matrix) throws(IndexError) {
        guard let bad = vectors.values.firstIndex(where: { !(abs($0) < halfLimit) }) else { return }
        throw .outOfHalfRange(row: bad / vectors.dimension, column: bad % vectors.dimension, value: vectors.values[bad])
    }

    mutating func append(_ vectors: UnsafePointer<Float>, count: Int) {
        switch precision {
        case .none: break
        case .float32: floats.append(contentsOf: UnsafeBufferPointer(start: vectors, count: count * dimension))
        case .float16:
            let start = halves.count
            halves.append(contentsOf: repeatElement(0, count: count * dimension))
            halves.withUnsafeMutableBufferPointer { Kernels.floatToHalf(vectors, $0.baseAddress! + start, count: count * dimension) }
        }
    }

    /// Overwrites the vector of `row` (a repair brings a newer copy of the same id).
    mutating func set(row: Int, _ vector: UnsafePointer<Float>) {
        switch precision {
        case .none: break
        case .float32:
            floats.withUnsafeMutableBufferPointer { ($0.baseAddress! + row * dimension).update(from: vector, count: dimension) }
        case .float16:
            halves.withUnsafeMutableBufferPointer { Kernels.floatToHalf(vector, $0.baseAddress! + row * dimension, count: dimension) }
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
            return Matrix(rows: rows.count, dimension: dimension, values: Array(floats[rows.lowerBound * dimension ..< rows.upperBound * dimension]))
        case .float16:
            var values = [Float](repeating: 0, count: rows.count * dimension)
            halves.withUnsafeBufferPointer { h in
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
            floats.withUnsafeBufferPointer { quiver_rerank(query, $0.baseAddress, 0, dimension, rows, count, innerProduct, distances) }
        case .float16:
            halves.withUnsafeBufferPointer { quiver_rerank(query, $0.baseAddress, 1, dimension, rows, count, innerProduct, distances) }
        }
    }
}
