/// A row-major matrix of integers, such as ground-truth neighbour ids (one row per query)
/// or id maps. Read whole, since these files are small next to the vectors.
public struct IntegerMatrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public let values: [Int64]

    public init(rows: Int, columns: Int, values: [Int64]) {
        precondition(values.count == rows * columns, "values must hold rows × columns entries")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    public subscript(row: Int) -> ArraySlice<Int64> {
        values[(row * columns)..<((row + 1) * columns)]
    }
}

/// Reads `.ivecs`, or `.npy` with dtype `<i4` or `<i8`, widening to Int64.
public func readIntegerMatrix(path: String) throws(DatasetError) -> IntegerMatrix {
    let matrix = try MatrixFile.open(path)
    let layout = matrix.layout
    guard layout.elementType == .int32 || layout.elementType == .int64 else {
        throw .unsupportedElementType(
            path: path,
            found: "\(layout.elementType.rawValue) (\(layout.elementType.npyDescr)); "
                + "vector files are read with VectorFile or VectorDataset",
            supported: VectorElementType.integerDescriptions)
    }
    try matrix.checkRowPrefixes(0..<layout.rows)
    let total = layout.rows * layout.columns
    let values = [Int64](unsafeUninitializedCapacity: total) { buffer, initialized in
        if let out = buffer.baseAddress, total > 0 {
            if layout.hasRowPrefix {
                for row in 0..<layout.rows {
                    ElementConversion.toInt64(
                        matrix.rowStart(row), type: layout.elementType, count: layout.columns,
                        into: out + row * layout.columns)
                }
            } else {
                ElementConversion.toInt64(
                    matrix.rowStart(0), type: layout.elementType, count: total, into: out)
            }
        }
        initialized = total
    }
    return IntegerMatrix(rows: layout.rows, columns: layout.columns, values: values)
}
