/// Everything that can go wrong while reading or writing a dataset file.
///
/// Rows and columns are 0-based and counted within the file named by `path`, so a user can
/// look the value up directly (for example with `numpy.load(path, mmap_mode='r')[row]`).
public enum DatasetError: Error, CustomStringConvertible, Sendable {
    case fileNotFound(path: String)
    case cannotOpen(path: String, reason: String)
    case badMagic(path: String, found: [UInt8])
    case unsupportedNpyVersion(path: String, major: UInt8, minor: UInt8)
    case unparseableHeader(path: String, reason: String)
    case unsupportedElementType(path: String, found: String, supported: [String])
    case fortranOrder(path: String)
    case notTwoDimensional(path: String, shape: [Int])
    case nonPositiveDimension(path: String, row: Int?, found: Int)
    /// The file ends inside `row`; `expectedBytes` is what the header (or the first row) implies.
    case truncated(path: String, row: Int, expectedBytes: Int, actualBytes: Int)
    /// The file holds more bytes than its header describes.
    case trailingBytes(path: String, expectedBytes: Int, actualBytes: Int)
    case dimensionChanged(path: String, row: Int, expected: Int, found: Int)
    case nonFiniteValue(path: String, row: Int, column: Int, value: Float)
    case dimensionMismatch(path: String, found: Int, expected: Int, firstPath: String)
    case noFilesMatch(pattern: String)
    case unknownExtension(path: String, supported: [String])
    case rowRangeOutOfBounds(requested: Range<Int>, count: Int)
    case valueCountMismatch(path: String, expected: Int, found: Int)
    case writeFailed(path: String, reason: String)

    /// The file the error is about, when there is one.
    public var path: String? {
        switch self {
        case .fileNotFound(let path), .cannotOpen(let path, _), .badMagic(let path, _),
            .unsupportedNpyVersion(let path, _, _), .unparseableHeader(let path, _),
            .unsupportedElementType(let path, _, _), .fortranOrder(let path),
            .notTwoDimensional(let path, _), .nonPositiveDimension(let path, _, _),
            .truncated(let path, _, _, _), .trailingBytes(let path, _, _),
            .dimensionChanged(let path, _, _, _), .nonFiniteValue(let path, _, _, _),
            .dimensionMismatch(let path, _, _, _), .unknownExtension(let path, _),
            .valueCountMismatch(let path, _, _), .writeFailed(let path, _):
            return path
        case .noFilesMatch, .rowRangeOutOfBounds:
            return nil
        }
    }

    /// The description without anything read from the file itself (magic bytes, header text,
    /// element type strings): what a server tells a remote caller about a file it may not see.
    public var descriptionWithoutContents: String {
        switch self {
        case .badMagic(let path, _):
            "\(path): not a .npy file (it does not start with the .npy magic bytes)"
        case .unparseableHeader(let path, _):
            "\(path): cannot parse its .npy header"
        case .unsupportedElementType(let path, _, let supported):
            "\(path): unsupported element type; supported here: " + supported.joined(separator: ", ")
        default:
            description
        }
    }

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): file not found"
        case .cannotOpen(let path, let reason):
            return "\(path): cannot open: \(reason)"
        case .badMagic(let path, let found):
            let hex = found.map { byte in
                let digits = String(byte, radix: 16)
                return digits.count == 1 ? "0" + digits : digits
            }.joined(separator: " ")
            return "\(path): not a .npy file: expected magic bytes 93 4e 55 4d 50 59 (\\x93NUMPY), "
                + "found \(hex.isEmpty ? "an empty file" : hex)"
        case .unsupportedNpyVersion(let path, let major, let minor):
            return "\(path): unsupported .npy format version \(major).\(minor); "
                + "supported versions are 1.0, 2.0 and 3.0"
        case .unparseableHeader(let path, let reason):
            return "\(path): cannot parse .npy header: \(reason)"
        case .unsupportedElementType(let path, let found, let supported):
            return "\(path): unsupported element type \(found); supported here: "
                + supported.joined(separator: ", ")
        case .fortranOrder(let path):
            return "\(path): array is stored in Fortran (column-major) order; only C order is "
                + "supported. Re-save it with numpy.save(path, numpy.ascontiguousarray(a))"
        case .notTwoDimensional(let path, let shape):
            let shown = "(" + shape.map(String.init).joined(separator: ", ")
                + (shape.count == 1 ? ",)" : ")")
            return "\(path): expected a 2-D array (rows, dimension), found shape \(shown)"
        case .nonPositiveDimension(let path, let row, let found):
            let place = row.map { " in row \($0)" } ?? ""
            return "\(path): dimension must be positive, found \(found)\(place)"
        case .truncated(let path, let row, let expectedBytes, let actualBytes):
            return "\(path): file is truncated: row \(row) is incomplete "
                + "(expected \(expectedBytes) bytes in total, file has \(actualBytes))"
        case .trailingBytes(let path, let expectedBytes, let actualBytes):
            return "\(path): file size does not match its header: expected \(expectedBytes) "
                + "bytes, file has \(actualBytes) (\(actualBytes - expectedBytes) more than the header's "
                + "shape and dtype describe)"
        case .dimensionChanged(let path, let row, let expected, let found):
            return "\(path): row \(row) has dimension \(found), expected \(expected) "
                + "like the first row; every row must have the same dimension"
        case .nonFiniteValue(let path, let row, let column, let value):
            return "\(path): row \(row), column \(column) holds \(value); "
                + "vectors must contain only finite numbers"
        case .dimensionMismatch(let path, let found, let expected, let firstPath):
            return "\(path): dimension \(found) differs from dimension \(expected) of "
                + "\(firstPath); all files of a dataset must have the same dimension"
        case .noFilesMatch(let pattern):
            return pattern.isEmpty
                ? "no dataset files given"
                : "no files match the pattern \(pattern)"
        case .unknownExtension(let path, let supported):
            return "\(path): unknown file extension; supported: "
                + supported.joined(separator: ", ")
        case .rowRangeOutOfBounds(let requested, let count):
            return "rows \(requested.lowerBound)..<\(requested.upperBound) requested, "
                + "but the dataset has \(count) rows"
        case .valueCountMismatch(let path, let expected, let found):
            return "\(path): expected \(expected) values (rows × dimension), got \(found)"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write: \(reason)"
        }
    }
}
