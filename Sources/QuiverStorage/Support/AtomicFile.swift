/// Whole-file atomic replacement for small state files (the coordinator's collection records,
/// shard maps, worker set): the new bytes are synced, renamed over `path`, and the directory is
/// synced, so a crash leaves either the old file or the new one, never a torn one.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String) throws(AtomicFileError) {
        let file = try AtomicFileWriter(path: path) { AtomicFileError(path: path, reason: $0) }
        try file.append(bytes)
        try file.commit()
    }
}

public struct AtomicFileError: Error, CustomStringConvertible, Sendable, Equatable {
    public let path: String
    public let reason: String

    public var description: String { "\(path): cannot write: \(reason)" }
}

extension VectorDataset {
    /// The files a shell pattern names, in the order `VectorDataset(pattern:)` reads them, so
    /// files paired with a dataset (id files) line up with its vector files.
    public static func matchingPaths(_ pattern: String) throws(DatasetError) -> [String] {
        try expand(pattern)
    }
}
