import Foundation
import GRPCCore
import QuiverProtocol

extension QuiverClient {
    /// Streams `rows × dimension` vectors to the coordinator in batches of `batchRows`; returns
    /// once every row is stored on its workers' write quorum. `ids` nil lets the coordinator
    /// number rows. `progress` is called with the rows sent so far.
    ///
    /// The rows form one named load (`loadID`, a fresh one by default): when the stream fails
    /// on the way (a worker or the coordinator restarting), it is sent again from the first row
    /// not acknowledged, up to `retries` times, and nothing is stored twice — assigned ids are
    /// derived from (load, row), and stored rows are recognised.
    @discardableResult
    public func load(_ collection: String, vectors: [Float], dimension: Int, ids: [Int64]? = nil,
                     batchRows: Int = 4096, loadID: String = QuiverClient.newLoadID(),
                     onDuplicateID: Quiver_V1_DuplicateIDs = .reject, retries: Int = 8,
                     progress: @escaping @Sendable (Int) -> Void = { _ in }) async throws(QuiverClientError) -> Quiver_V1_LoadResponse {
        guard dimension > 0, vectors.count % dimension == 0 else {
            throw QuiverClientError(code: .invalidArgument, message: "\(vectors.count) values do not form rows of dimension \(dimension)")
        }
        let rows = vectors.count / dimension
        if let ids, ids.count != rows {
            throw QuiverClientError(code: .invalidArgument, message: "\(ids.count) ids for \(rows) vectors")
        }
        let batch = max(1, batchRows)
        var resume = 0
        var attempt = 0
        var ranges: [Quiver_V1_IdRange] = []
        while true {
            let first = resume
            let request = StreamingClientRequest<Quiver_V1_LoadRequest>(metadata: metadata) { writer in
                var start = first
                while start < rows {
                    let end = min(rows, start + batch)
                    var message = Quiver_V1_LoadRequest()
                    message.collection = collection
                    message.loadID = loadID
                    message.firstRow = UInt64(start)
                    message.onDuplicateID = onDuplicateID
                    message.expectedRows = UInt64(rows)
                    message.batch.vectors = Quiver_V1_FloatMatrix(rows: end - start, dimension: dimension,
                                                                   values: Array(vectors[start * dimension ..< end * dimension]))
                    if let ids { message.batch.ids = WireArrays.pack(ids[start ..< end]) }
                    try await writer.write(message)
                    start = end
                    progress(start)
                }
            }
            do {
                var response = try await coordinator.load(request: request, options: options)
                ranges = Self.merged(ranges + response.assignedIds)
                response.assignedIds = ranges
                response.rowsAccepted = UInt64(rows)
                return response
            } catch let error as RPCError where Self.isRetryable(error.code) && attempt < retries {
                attempt += 1
                if let through = error.metadata[stringValues: "quiver-acknowledged-through"].first(where: { _ in true }),
                   let row = Int(through), row > resume {
                    resume = min(row, rows)
                }
                try? await Task.sleep(for: .milliseconds(min(5_000, 100 << min(attempt, 6))))
            } catch let error as RPCError {
                throw QuiverClientError(code: error.code, message: error.message)
            } catch {
                throw QuiverClientError(code: .unknown, message: "\(error)")
            }
        }
    }

    /// A load id that no other load uses.
    public static func newLoadID() -> String {
        "load-" + UUID().uuidString.lowercased()
    }

    /// Failures a resent load can get past: the cluster was (partly) unreachable for a moment.
    static func isRetryable(_ code: RPCError.Code) -> Bool {
        code == .unavailable || code == .deadlineExceeded || code == .aborted
    }

    /// Id ranges in order, overlapping and adjacent ones merged.
    static func merged(_ ranges: [Quiver_V1_IdRange]) -> [Quiver_V1_IdRange] {
        var out: [Quiver_V1_IdRange] = []
        for range in ranges.sorted(by: { $0.first < $1.first }) where range.count > 0 {
            if var last = out.last, last.first + Int64(last.count) >= range.first {
                last.count = UInt64(max(last.first + Int64(last.count), range.first + Int64(range.count)) - last.first)
                out[out.count - 1] = last
            } else {
                out.append(range)
            }
        }
        return out
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
