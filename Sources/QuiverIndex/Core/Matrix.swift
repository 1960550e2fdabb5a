/// A dense row-major matrix of Float: `rows` vectors of `dimension` components, contiguous.
public struct Matrix: Sendable, Equatable {
    public private(set) var rows: Int
    public let dimension: Int
    public var values: [Float]

    public init(rows: Int, dimension: Int, values: [Float]) {
        precondition(rows >= 0 && dimension > 0 && values.count == rows * dimension,
                     "matrix shape \(rows)x\(dimension) does not match \(values.count) values")
        self.rows = rows
        self.dimension = dimension
        self.values = values
    }

    public init(rows: Int, dimension: Int, repeating value: Float = 0) {
        self.init(rows: rows, dimension: dimension, values: [Float](repeating: value, count: rows * dimension))
    }

    public subscript(row: Int) -> ArraySlice<Float> {
        values[row * dimension ..< (row + 1) * dimension]
    }

    public mutating func append(row: some Collection<Float>) {
        precondition(row.count == dimension)
        values.append(contentsOf: row)
        rows += 1
    }

    public mutating func append(contentsOf other: Matrix) {
        precondition(other.dimension == dimension)
        values.append(contentsOf: other.values)
        rows += other.rows
    }

    /// The rows at `indices`, in that order.
    public func gathering(_ indices: some Collection<Int>) -> Matrix {
        var out = [Float]()
        out.reserveCapacity(indices.count * dimension)
        values.withUnsafeBufferPointer { source in
            for index in indices {
                out.append(contentsOf: source[index * dimension ..< (index + 1) * dimension])
            }
        }
        return Matrix(rows: indices.count, dimension: dimension, values: out)
    }

    /// Scales every row to unit L2 norm (zero rows stay zero).
    public mutating func normalizeRows() {
        let dimension = dimension
        values.withUnsafeMutableBufferPointer { buffer in
            for row in 0 ..< rows {
                let base = buffer.baseAddress! + row * dimension
                var sum: Float = 0
                for j in 0 ..< dimension { sum += base[j] * base[j] }
                guard sum > 0 else { continue }
                let inverse = 1 / sum.squareRoot()
                for j in 0 ..< dimension { base[j] *= inverse }
            }
        }
    }
}
