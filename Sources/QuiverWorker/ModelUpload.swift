import GRPCCore
import QuiverProtocol

/// Reassembles a model streamed in `InstallModelChunk`s, checking that every chunk belongs to
/// the same upload and that they tile `total_bytes` in order without gaps or overlap.
struct ModelUpload {
    let maxBytes: Int
    private(set) var collection = ""
    private(set) var version: UInt64 = 0
    private(set) var bytes: [UInt8] = []
    private var totalBytes = 0
    private var started = false

    init(maxBytes: Int) { self.maxBytes = maxBytes }

    mutating func add(_ chunk: Quiver_V1_InstallModelChunk) throws(RPCError) {
        if !started {
            guard !chunk.collection.isEmpty else { throw .invalidArgument("InstallModel: the first chunk must name the collection") }
            guard chunk.modelVersion > 0 else { throw .invalidArgument("InstallModel: model_version must be at least 1") }
            guard chunk.totalBytes > 0 else { throw .invalidArgument("InstallModel: total_bytes must be the model's size, got 0") }
            guard chunk.totalBytes <= UInt64(maxBytes) else {
                throw .resourceExhausted("InstallModel: model of \(chunk.totalBytes) bytes exceeds this worker's limit of \(maxBytes) bytes")
            }
            collection = chunk.collection
            version = chunk.modelVersion
            totalBytes = Int(chunk.totalBytes)
            // Memory grows with the bytes that actually arrive, not with what the first chunk claims.
            bytes.reserveCapacity(min(totalBytes, 4 << 20))
            started = true
        } else {
            guard chunk.collection == collection, chunk.modelVersion == version, chunk.totalBytes == UInt64(totalBytes) else {
                throw .invalidArgument("InstallModel: chunk at offset \(chunk.offset) is for \(chunk.collection) version "
                    + "\(chunk.modelVersion) (\(chunk.totalBytes) bytes), but the stream started with \(collection) version "
                    + "\(version) (\(totalBytes) bytes); send one model per stream")
            }
        }
        guard chunk.offset == UInt64(bytes.count) else {
            throw .invalidArgument("InstallModel: chunk offset is \(chunk.offset), expected \(bytes.count); chunks must arrive in order without gaps")
        }
        guard chunk.data.count <= totalBytes - bytes.count else {
            throw .invalidArgument("InstallModel: chunk at offset \(chunk.offset) with \(chunk.data.count) bytes runs past total_bytes \(totalBytes)")
        }
        bytes.append(contentsOf: chunk.data)
    }

    /// The complete model bytes; fails if the stream was empty or ended early.
    func finish() throws(RPCError) -> [UInt8] {
        guard started else { throw .invalidArgument("InstallModel: the stream carried no chunks") }
        guard bytes.count == totalBytes else {
            throw .invalidArgument("InstallModel: stream ended after \(bytes.count) of \(totalBytes) bytes; re-send the whole model")
        }
        return bytes
    }
}
