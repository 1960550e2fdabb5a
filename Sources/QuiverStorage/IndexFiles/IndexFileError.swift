/// The parts of an index file, named in errors so a report says where the damage is.
public enum IndexFileSection: String, Sendable, CaseIterable {
    case header
    case model
    case listDirectory = "list directory"
    case listRows = "list rows"
    case listCodes = "list codes"
    case listVectors = "list vectors"
    case externalIDs = "external ids"
    case rawVectors = "raw vectors"
    case sectionTable = "section table"
    case footer
}

/// Why an index file could not be written or read. A file that fails to load is never
/// partly used: re-save the index, or restore the file from where it came from.
public enum IndexFileError: Error, Equatable, CustomStringConvertible, Sendable {
    case cannotOpen(path: String, reason: String)
    case readFailed(path: String, reason: String)
    case writeFailed(path: String, reason: String)
    case empty(path: String)
    case badMagic(path: String, found: [UInt8])
    case unsupportedVersion(path: String, found: UInt16, supported: UInt16)
    case unsupportedFlags(path: String, flags: UInt64)
    /// The file is shorter than its header records; it was cut short (a copy or download stopped).
    case truncated(path: String, expectedBytes: Int, actualBytes: Int)
    case checksumMismatch(path: String, section: IndexFileSection, stored: UInt32, computed: UInt32)
    /// A length, count or value disagrees with the rest of the file.
    case inconsistent(path: String, section: IndexFileSection, expected: String, found: String)
    case invalidModel(path: String, ModelCodecError)

    public var path: String {
        switch self {
        case .cannotOpen(let path, _), .readFailed(let path, _), .writeFailed(let path, _), .empty(let path),
             .badMagic(let path, _), .unsupportedVersion(let path, _, _), .unsupportedFlags(let path, _),
             .truncated(let path, _, _), .checksumMismatch(let path, _, _, _),
             .inconsistent(let path, _, _, _), .invalidModel(let path, _):
            return path
        }
    }

    /// The part of the file at fault, when the error is about the contents. A truncated file
    /// counts as the header's: it is the header's recorded length that the file falls short of.
    public var section: IndexFileSection? {
        switch self {
        case .badMagic, .unsupportedVersion, .unsupportedFlags, .empty, .truncated: .header
        case .checksumMismatch(_, let section, _, _),
             .inconsistent(_, let section, _, _):
            section
        case .invalidModel: .model
        case .cannotOpen, .readFailed, .writeFailed: nil
        }
    }

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "\(path): cannot open index file: \(reason)"
        case .readFailed(let path, let reason):
            return "\(path): cannot read index file: \(reason)"
        case .writeFailed(let path, let reason):
            return "\(path): cannot write index file: \(reason)"
        case .empty(let path):
            return "\(path): index file is empty (0 bytes); it was never written completely, save the index again"
        case .badMagic(let path, let found):
            return "\(path): not a Quiver index file: expected magic \"QVRIDX\" (51 56 52 49 44 58), found \(hex(found))"
        case .unsupportedVersion(let path, let found, let supported):
            return found > supported
                ? "\(path): index format version \(found) is newer than this build reads (\(supported)); upgrade Quiver"
                : "\(path): index format version \(found) is not supported; this build reads version \(supported)"
        case .unsupportedFlags(let path, let flags):
            return "\(path): header flags \(String(flags, radix: 16)) (hex) name features this build does not know; "
                + "upgrade Quiver or re-save the index with this version"
        case .truncated(let path, let expected, let actual):
            return "\(path): index file is truncated: expected \(expected) bytes, file has \(actual) "
                + "(\(expected - actual) missing); it was cut short, save or copy it again"
        case .checksumMismatch(let path, let section, let stored, let computed):
            return "\(path): \(section.rawValue) is corrupt: CRC-32C is \(hex32(computed)), the file recorded "
                + "\(hex32(stored)); the file was damaged after it was written"
        case .inconsistent(let path, let section, let expected, let found):
            return "\(path): \(section.rawValue) is inconsistent: expected \(expected), found \(found)"
        case .invalidModel(let path, let error):
            return "\(path): model section: \(error)"
        }
    }
}
