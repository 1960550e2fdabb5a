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
    let file = try AtomicFileWriter(path: path)
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

/// A temporary sibling of the destination, renamed over it on `commit`; deleted if dropped
/// before that.
final class AtomicFileWriter {
    let path: String
    let temporaryPath: String
    private var fd: Int32
    private var committed = false

    init(path: String) throws(DatasetError) {
        self.path = path
        temporaryPath = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
    }

    func append(_ bytes: [UInt8]) throws(DatasetError) {
        let code = bytes.withUnsafeBytes { appendReportingErrno($0) }
        if code != 0 { throw .writeFailed(path: path, reason: String(cString: strerror(code))) }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(DatasetError) {
        let code = appendReportingErrno(bytes)
        if code != 0 { throw .writeFailed(path: path, reason: String(cString: strerror(code))) }
    }

    /// 0 on success, else errno.
    private func appendReportingErrno(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return 0
    }

    func commit() throws(DatasetError) {
        // fsync before rename so a crash cannot leave the new name pointing at missing data.
        if fsync(fd) != 0 || close(fd) != 0 {
            let reason = String(cString: strerror(errno))
            fd = -1
            throw .writeFailed(path: path, reason: reason)
        }
        fd = -1
        if rename(temporaryPath, path) != 0 {
            throw .writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
        committed = true
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !committed { unlink(temporaryPath) }
    }
}
