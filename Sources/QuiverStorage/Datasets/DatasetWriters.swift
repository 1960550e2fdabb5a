#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Writers for the formats the readers accept, so tests and tools can produce datasets.
// Every writer goes through a temporary file in the target directory and renames it into
// place, so a reader never sees a half-written file and a failure leaves no debris.

/// Writes `values` (rows × dimension, row-major) as a 2-D `.npy` array stored as float32 or
/// float16. Values that do not fit float16 become ±Inf, which the reader then rejects.
public func writeNpy(
    path: String, rows: Int, dimension: Int, values: [Float],
    elementType: VectorElementType = .float32
) throws(DatasetError) {
    try writeNpy(path: path, rows: rows, dimension: dimension, values: values,
                 elementType: elementType, version: nil)
}

func writeNpy(
    path: String, rows: Int, dimension: Int, values: [Float],
    elementType: VectorElementType, version: UInt8?
) throws(DatasetError) {
    switch elementType {
    case .float32:
        try writeMatrix(
            path: path, rows: rows, columns: dimension, values: values, width: 4,
            header: NpyFormat.header(elementType: .float32, rows: rows, columns: dimension, version: version),
            rowPrefix: false) { source, out in
                out.copyMemory(from: UnsafeRawPointer(source.baseAddress!), byteCount: source.count * 4)
            }
    case .float16:
        try writeMatrix(
            path: path, rows: rows, columns: dimension, values: values, width: 2,
            header: NpyFormat.header(elementType: .float16, rows: rows, columns: dimension, version: version),
            rowPrefix: false) { source, out in
                for (i, value) in source.enumerated() {
                    out.storeBytes(of: Float16(value).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                }
            }
    default:
        throw .unsupportedElementType(
            path: path, found: "\(elementType.rawValue) for Float values",
            supported: ["float32", "float16 (pass [UInt8], [Int8], [Int32] or [Int64] for integer types)"])
    }
}

public func writeNpy(path: String, rows: Int, dimension: Int, values: [UInt8]) throws(DatasetError) {
    try writeIntegers(path: path, rows: rows, columns: dimension, values: values, type: .uint8, version: nil)
}

public func writeNpy(path: String, rows: Int, dimension: Int, values: [Int8]) throws(DatasetError) {
    try writeIntegers(path: path, rows: rows, columns: dimension, values: values, type: .int8, version: nil)
}

public func writeNpy(path: String, rows: Int, columns: Int, values: [Int32]) throws(DatasetError) {
    try writeIntegers(path: path, rows: rows, columns: columns, values: values, type: .int32, version: nil)
}

public func writeNpy(path: String, rows: Int, columns: Int, values: [Int64]) throws(DatasetError) {
    try writeIntegers(path: path, rows: rows, columns: columns, values: values, type: .int64, version: nil)
}

/// TEXMEX float32 vectors.
public func writeFvecs(path: String, rows: Int, dimension: Int, values: [Float]) throws(DatasetError) {
    try writeMatrix(path: path, rows: rows, columns: dimension, values: values, width: 4,
                    header: [], rowPrefix: true, encode: copyLittleEndian)
}

/// TEXMEX uint8 vectors.
public func writeBvecs(path: String, rows: Int, dimension: Int, values: [UInt8]) throws(DatasetError) {
    try writeMatrix(path: path, rows: rows, columns: dimension, values: values, width: 1,
                    header: [], rowPrefix: true, encode: copyLittleEndian)
}

/// TEXMEX int32 rows, the usual container for ground-truth ids.
public func writeIvecs(path: String, rows: Int, columns: Int, values: [Int32]) throws(DatasetError) {
    try writeMatrix(path: path, rows: rows, columns: columns, values: values, width: 4,
                    header: [], rowPrefix: true, encode: copyLittleEndian)
}

func writeIntegers<T: FixedWidthInteger>(
    path: String, rows: Int, columns: Int, values: [T], type: VectorElementType, version: UInt8?
) throws(DatasetError) {
    try writeMatrix(
        path: path, rows: rows, columns: columns, values: values, width: MemoryLayout<T>.size,
        header: NpyFormat.header(elementType: type, rows: rows, columns: columns, version: version),
        rowPrefix: false, encode: copyLittleEndian)
}

/// The host is little-endian (checked in MappedFile.swift), so values are stored as they are.
private func copyLittleEndian<T>(_ source: UnsafeBufferPointer<T>, _ out: UnsafeMutableRawPointer) {
    out.copyMemory(from: UnsafeRawPointer(source.baseAddress!), byteCount: source.count * MemoryLayout<T>.stride)
}

/// Streams `header`, then each row (optionally preceded by its Int32 dimension) encoded by
/// `encode` through a bounded staging buffer, so writing never doubles the memory in use.
private func writeMatrix<T>(
    path: String, rows: Int, columns: Int, values: [T], width: Int, header: [UInt8],
    rowPrefix: Bool, encode: (UnsafeBufferPointer<T>, UnsafeMutableRawPointer) -> Void
) throws(DatasetError) {
    guard columns > 0 else { throw .nonPositiveDimension(path: path, row: nil, found: columns) }
    guard rows >= 0, values.count == rows * columns else {
        throw .valueCountMismatch(path: path, expected: max(rows, 0) * columns, found: values.count)
    }
    let file = try AtomicFileWriter(path: path) { DatasetError.writeFailed(path: path, reason: $0) }
    try file.append(header)

    let rowBytes = (rowPrefix ? 4 : 0) + columns * width
    let rowsPerChunk = max(1, (1 << 20) / rowBytes)
    let staging = UnsafeMutableRawBufferPointer.allocate(
        byteCount: min(rowsPerChunk, max(rows, 1)) * rowBytes, alignment: 16)
    defer { staging.deallocate() }
    let prefix = Int32(truncatingIfNeeded: columns).littleEndian

    var failure: DatasetError?
    values.withUnsafeBufferPointer { all in
        var row = 0
        while row < rows {
            let chunkRows = min(rowsPerChunk, rows - row)
            if rowPrefix {
                for i in 0..<chunkRows {
                    let out = staging.baseAddress! + i * rowBytes
                    out.storeBytes(of: prefix, as: Int32.self)
                    let first = (row + i) * columns
                    encode(UnsafeBufferPointer(rebasing: all[first..<(first + columns)]), out + 4)
                }
            } else {
                let first = row * columns
                encode(UnsafeBufferPointer(rebasing: all[first..<(first + chunkRows * columns)]),
                       staging.baseAddress!)
            }
            do throws(DatasetError) {
                try file.append(UnsafeRawBufferPointer(rebasing: staging[0..<(chunkRows * rowBytes)]))
            } catch {
                failure = error
                return
            }
            row += chunkRows
        }
    }
    if let failure { throw failure }
    try file.commit()
}
