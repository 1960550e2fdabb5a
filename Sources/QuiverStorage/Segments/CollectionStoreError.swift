/// Why a worker's collection folder could not be created, opened or written. Errors that name
/// an offset point at stored data that was acknowledged and is now damaged: the collection must
/// be restored from a replica or re-loaded; nothing is silently skipped.
public enum CollectionStoreError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidName(String)
    case alreadyExists(name: String)
    case ioFailed(path: String, operation: String, reason: String)
    case manifestMissing(path: String)
    case manifestCorrupt(path: String, reason: String)
    case invalidModel(path: String, ModelCodecError)
    case segmentMissing(path: String, committedBytes: Int)
    /// Committed bytes that fail their checks: a flipped byte, a record cut short in the middle
    /// of a file, or a record that does not fit the model.
    case corruptRecord(path: String, offset: Int, reason: String)
    case segmentShorterThanCommitted(path: String, size: Int, committedBytes: Int)
    case modelNotReplaceable(name: String, installedVersion: UInt64, storedRows: Int)
    /// A failed write could not be rolled back, so the segment's end is unknown until reopened.
    case unusableAfterFailedWrite(path: String)

    public var description: String {
        switch self {
        case .invalidName(let name):
            return "invalid collection name \"\(name)\": use 1-128 characters of A-Z a-z 0-9 _ . - (not \".\" or \"..\")"
        case .alreadyExists(let name):
            return "collection \"\(name)\" already exists on this worker"
        case .ioFailed(let path, let operation, let reason):
            return "\(path): \(operation) failed: \(reason)"
        case .manifestMissing(let path):
            return "\(path): collection folder has no manifest; it was not created by this worker or was damaged — "
                + "remove the folder and re-load the collection"
        case .manifestCorrupt(let path, let reason):
            return "\(path): manifest is corrupt (\(reason)); restore the collection from a replica or re-load it"
        case .invalidModel(let path, let error):
            return "\(path): \(error)"
        case .segmentMissing(let path, let committedBytes):
            return "\(path): segment file is missing but the manifest records \(committedBytes) committed bytes in it; "
                + "restore the collection from a replica or re-load it"
        case .corruptRecord(let path, let offset, let reason):
            return "\(path): committed record at byte \(offset) is corrupt (\(reason)); "
                + "restore the collection from a replica or re-load it"
        case .segmentShorterThanCommitted(let path, let size, let committedBytes):
            return "\(path): segment is \(size) bytes but the manifest records \(committedBytes) committed bytes; "
                + "acknowledged rows are missing — restore the collection from a replica or re-load it"
        case .modelNotReplaceable(let name, let installed, let rows):
            return "collection \"\(name)\" holds \(rows) rows encoded with model version \(installed); "
                + "drop the collection on this worker before installing a different model"
        case .unusableAfterFailedWrite(let path):
            return "\(path): an earlier write failed and could not be rolled back; restart the worker to recover the segment"
        }
    }
}
