import GRPCCore
import QuiverProtocol

extension QuiverClient {
    /// Streams `rows × dimension` vectors to the coordinator in batches of `batchRows`; returns
    /// once every row is stored on its workers. `ids` nil lets the coordinator number rows.
    /// `progress` is called with the rows sent so far.
    @discardableResult
    public func load(_ collection: String, vectors: [Float], dimension: Int, ids: [Int64]? = nil,
                     batchRows: Int = 4096,
                     progress: @escaping @Sendable (Int) -> Void = { _ in }) async throws(QuiverClientError) -> Quiver_V1_LoadResponse {
        guard dimension > 0, vectors.count % dimension == 0 else {
            throw QuiverClientError(code: .invalidArgument, message: "\(vectors.count) values do not form rows of dimension \(dimension)")
        }
        let rows = vectors.count / dimension
        if let ids, ids.count != rows {
            throw QuiverClientError(code: .invalidArgument, message: "\(ids.count) ids for \(rows) vectors")
        }
        let batch = max(1, batchRows)
        let request = StreamingClientRequest<Quiver_V1_LoadRequest>(metadata: metadata) { writer in
            var start = 0
            while start < rows {
                let end = min(rows, start + batch)
                var message = Quiver_V1_LoadRequest()
                message.collection = collection
                message.batch.vectors = Quiver_V1_FloatMatrix(rows: end - start, dimension: dimension,
                                                               values: Array(vectors[start * dimension ..< end * dimension]))
                if let ids { message.batch.ids = WireArrays.pack(ids[start ..< end]) }
                try await writer.write(message)
                start = end
                progress(start)
            }
        }
        return try await call { try await coordinator.load(request: request, options: options) }
    }

    /// Starts a server-side load of files the coordinator can read (`'dir/base.*.npy'`);
    /// returns the job id to follow with `loadStatus`.
    public func loadFiles(_ collection: String, pathGlob: String, idPathGlob: String = "", batchSize: Int = 0) async throws(QuiverClientError) -> Quiver_V1_LoadFilesResponse {
        var request = Quiver_V1_LoadFilesRequest()
        request.collection = collection
        request.pathGlob = pathGlob
        request.idPathGlob = idPathGlob
        request.batchSize = UInt32(clamping: batchSize)
        return try await call { try await coordinator.loadFiles(request, metadata: metadata, options: options) }
    }

    public func loadStatus(_ jobID: String) async throws(QuiverClientError) -> Quiver_V1_LoadStatusResponse {
        var request = Quiver_V1_LoadStatusRequest()
        request.loadJobID = jobID
        return try await call { try await coordinator.loadStatus(request, metadata: metadata, options: options) }
    }
}
