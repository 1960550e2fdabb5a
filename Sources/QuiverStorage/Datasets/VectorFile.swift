import QuiverIndex

/// The container a dataset file is stored in, chosen by its extension.
public enum VectorFileFormat: String, Sendable, CaseIterable {
    case npy, fvecs, bvecs, ivecs

    static let supportedExtensions = allCases.map { "." + $0.rawValue }

    static func forPath(_ path: String) throws(DatasetError) -> VectorFileFormat {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."),
            let format = VectorFileFormat(rawValue: name[name.index(after: dot)...].lowercased())
        else {
            throw .unknownExtension(path: path, supported: supportedExtensions)
        }
        return format
    }
}

/// How one value is stored on disk (always little-endian).
public enum VectorElementType: String, Sendable, CaseIterable {
    case float32, float16, uint8, int8, int32, int64

    public var byteWidth: Int {
        switch self {
        case .float32, .int32: 4
        case .float16: 2
        case .uint8, .int8: 1
        case .int64: 8
        }
    }

    /// Vectors are converted to Float; integer matrices (ids, ground truth) are not vectors.
    var isVectorType: Bool {
        switch self {
        case .float32, .float16, .uint8, .int8: true
        case .int32, .int64: false
        }
    }

    /// The numpy dtype string written to and expected in .npy headers.
    var npyDescr: String {
        switch self {
        case .float32: "<f4"
        case .float16: "<f2"
        case .uint8: "|u1"
        case .int8: "|i1"
        case .int32: "<i4"
        case .int64: "<i8"
        }
    }

    static let vectorDescriptions = [
        "float32 (<f4, .fvecs)", "float16 (<f2)", "uint8 (|u1, .bvecs)", "int8 (|i1)",
    ]
    static let integerDescriptions = ["int32 (<i4, .ivecs)", "int64 (<i8)"]
}

/// Where the rows of a 2-D file live inside its bytes.
struct MatrixLayout: Sendable {
    let format: VectorFileFormat
    let elementType: VectorElementType
    let rows: Int
    let columns: Int
    /// Byte offset of the first value of row 0 (after any per-row dimension prefix).
    let dataOffset: Int
    /// Bytes from one row's first value to the next row's first value.
    let rowStride: Int

    /// TEXMEX rows repeat their dimension; it has to be checked as rows are read.
    var hasRowPrefix: Bool { format != .npy }
    var rowPayloadBytes: Int { columns * elementType.byteWidth }
}

/// A mapped file plus its parsed layout; shared by the vector and integer readers.
struct MatrixFile: Sendable {
    let mapping: MappedFile
    let layout: MatrixLayout

    static func open(_ path: String) throws(DatasetError) -> MatrixFile {
        let mapping = try MappedFile(path: path)
        let format = try VectorFileFormat.forPath(path)
        let layout: MatrixLayout
        switch format {
        case .npy: layout = try NpyFormat.layout(of: mapping)
        case .fvecs, .bvecs, .ivecs: layout = try TexmexFormat.layout(of: mapping, format: format)
        }
        return MatrixFile(mapping: mapping, layout: layout)
    }

    /// Checks the repeated dimension of TEXMEX rows; the file size check at open cannot see a
    /// dimension change when the sizes happen to add up.
    @inline(__always)
    func checkRowPrefixes(_ rows: Range<Int>) throws(DatasetError) {
        guard layout.hasRowPrefix else { return }
        let expected = Int32(truncatingIfNeeded: layout.columns)
        var offset = layout.dataOffset - 4 + rows.lowerBound * layout.rowStride
        for row in rows {
            let found = mapping.int32(at: offset)
            if found != expected {
                throw .dimensionChanged(
                    path: mapping.path, row: row, expected: layout.columns, found: Int(found))
            }
            offset += layout.rowStride
        }
    }

    /// Pointer to the first value of `row`.
    @inline(__always)
    func rowStart(_ row: Int) -> UnsafeRawPointer {
        mapping.bytes.baseAddress.unsafelyUnwrapped + layout.dataOffset + row * layout.rowStride
    }
}

/// One dataset file, opened and validated, whose rows can be read as Float vectors.
///
/// Opening maps the file and checks its header and size; values are only touched when rows
/// are read, so opening a file larger than RAM is cheap.
public struct VectorFile: Sendable {
    public let path: String
    public let format: VectorFileFormat
    public let elementType: VectorElementType
    /// Number of rows (vectors).
    public let count: Int
    public let dimension: Int
    let matrix: MatrixFile

    public static func open(_ path: String) throws(DatasetError) -> VectorFile {
        let matrix = try MatrixFile.open(path)
        let layout = matrix.layout
        guard layout.elementType.isVectorType else {
            throw .unsupportedElementType(
                path: path,
                found: "\(layout.elementType.rawValue) (\(layout.elementType.npyDescr)); "
                    + "integer files hold ids or ground truth, read them with readIntegerMatrix",
                supported: VectorElementType.vectorDescriptions)
        }
        return VectorFile(
            path: path, format: layout.format, elementType: layout.elementType,
            count: layout.rows, dimension: layout.columns, matrix: matrix)
    }

    /// Rows `range` as Float, row-major.
    public func readRows(_ range: Range<Int>) throws(DatasetError) -> [Float] {
        try checkRange(range)
        return try filledFloats(count: range.count * dimension) { buffer throws(DatasetError) in
            try readRows(range, into: buffer)
        }
    }

    /// Converts rows `range` into `destination`, which must hold `range.count * dimension`
    /// values. Throws on a NaN/Inf value or a TEXMEX dimension change.
    public func readRows(
        _ range: Range<Int>, into destination: UnsafeMutableBufferPointer<Float>
    ) throws(DatasetError) {
        try checkRange(range)
        precondition(
            destination.count >= range.count * dimension,
            "destination holds \(destination.count) values, \(range.count * dimension) needed")
        guard !range.isEmpty, let out = destination.baseAddress else { return }
        try matrix.checkRowPrefixes(range)
        let layout = matrix.layout
        if !layout.hasRowPrefix {
            // npy rows are contiguous, so the whole range converts as one run.
            ElementConversion.toFloat(
                matrix.rowStart(range.lowerBound), type: elementType,
                count: range.count * dimension, into: out)
        } else {
            for (i, row) in range.enumerated() {
                ElementConversion.toFloat(
                    matrix.rowStart(row), type: elementType, count: dimension,
                    into: out + i * dimension)
            }
        }
        try checkFinite(UnsafeBufferPointer(start: out, count: range.count * dimension),
                        firstRow: range.lowerBound)
    }

    public func readAll() throws(DatasetError) -> [Float] {
        try readRows(0..<count)
    }

    private func checkRange(_ range: Range<Int>) throws(DatasetError) {
        if range.lowerBound < 0 || range.upperBound > count {
            throw .rowRangeOutOfBounds(requested: range, count: count)
        }
    }

    private func checkFinite(
        _ values: UnsafeBufferPointer<Float>, firstRow: Int
    ) throws(DatasetError) {
        // Integer inputs cannot produce NaN or Inf.
        guard elementType == .float32 || elementType == .float16 else { return }
        if let index = Kernels.firstNonFinite(values) {
            throw .nonFiniteValue(
                path: path, row: firstRow + index / dimension, column: index % dimension,
                value: values[index])
        }
    }
}
