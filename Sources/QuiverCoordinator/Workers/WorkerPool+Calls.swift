import Foundation
import GRPCCore
import QuiverCluster
import QuiverIndex
import QuiverProtocol

/// The worker RPCs the coordinator makes, each turning a worker's failure into a
/// `CoordinatorError` that names the worker.
extension WorkerPool {
    static let modelChunkBytes = 1 << 20
    /// Ingest messages stay below 4 MiB, so they pass even a worker left at gRPC's default limit.
    static let ingestMessageBytes = 3 << 20

    /// Streams the model's ModelCodec bytes in ≤ 1 MiB chunks.
    func installModel(_ bytes: [UInt8], version: UInt64, collection: String, on worker: WorkerID) async throws(CoordinatorError) {
        let client = try client(worker)
        let total = bytes.count
        do {
            _ = try await client.installModel(metadata: callMetadata, options: .worker(timeout: .seconds(120))) { writer in
                var offset = 0
                repeat {
                    let end = min(total, offset + Self.modelChunkBytes)
                    var chunk = Quiver_V1_InstallModelChunk()
                    chunk.collection = collection
                    chunk.modelVersion = version
                    chunk.totalBytes = UInt64(total)
                    chunk.offset = UInt64(offset)
                    chunk.data = Data(bytes[offset ..< end])
                    try await writer.write(chunk)
                    offset = end
                } while offset < total
            }
            recordSuccess(worker)
        } catch {
            recordFailure(worker, error)
            throw CoordinatorError.wrapping(error, context: "installing model \(version) of \(collection) on worker \(worker)")
        }
    }

    /// Tells a worker the lists it owns. `release` deletes the data of lists it no longer owns:
    /// only once every one of them has serving replicas elsewhere.
    func assignLists(_ lists: [Int32], collection: String, modelVersion: UInt64, shardMapVersion: UInt64,
                     release: Bool = false, on worker: WorkerID) async throws(CoordinatorError) {
        var request = Quiver_V1_AssignListsRequest()
        request.collection = collection
        request.modelVersion = modelVersion
        request.shardMapVersion = shardMapVersion
        request.listIds = WireArrays.pack(lists)
        request.releaseUnowned = release
        do {
            _ = try await client(worker).assignLists(request, metadata: callMetadata, options: .worker(timeout: .seconds(60)))
            recordSuccess(worker)
        } catch {
            recordFailure(worker, error)
            throw CoordinatorError.wrapping(error, context: "assigning \(lists.count) lists of \(collection) to worker \(worker)")
        }
    }

    /// Sends one routed group of a batch over one Ingest stream and waits for the worker to
    /// confirm every row durable.
    func ingest(_ group: IngestGroup, vectors: Matrix, ids: [Int64], collection: String, modelVersion: UInt64,
                shardMapVersion: UInt64) async throws(CoordinatorError) {
        let client = try client(group.worker)
        let dimension = vectors.dimension
        let rowsPerMessage = max(1, Self.ingestMessageBytes / (dimension * 4 + 16))
        let expected = group.count
        let response: Quiver_V1_IngestResponse
        do {
            response = try await client.ingest(metadata: callMetadata, options: .worker(timeout: .seconds(600))) { writer in
                var start = 0
                while start < group.count {
                    let end = min(group.count, start + rowsPerMessage)
                    let rows = group.rows[start ..< end]
                    var values = [Float]()
                    values.reserveCapacity(rows.count * dimension)
                    vectors.values.withUnsafeBufferPointer { source in
                        for row in rows { values.append(contentsOf: source[row * dimension ..< (row + 1) * dimension]) }
                    }
                    var message = Quiver_V1_IngestRequest()
                    message.collection = collection
                    message.modelVersion = modelVersion
                    message.shardMapVersion = shardMapVersion
                    message.batch.vectors = Quiver_V1_FloatMatrix(rows: rows.count, dimension: dimension, values: values)
                    message.batch.ids = WireArrays.pack(rows.map { ids[$0] })
                    message.listIds = WireArrays.pack(group.lists[start ..< end])
                    let spills = group.spillLists[start ..< end]
                    if spills.contains(where: { $0 >= 0 }) { message.spillListIds = WireArrays.pack(spills) }
                    try await writer.write(message)
                    start = end
                }
            }
        } catch {
            recordFailure(group.worker, error)
            throw CoordinatorError.wrapping(error, context: "storing \(expected) rows of \(collection) on worker \(group.worker)")
        }
        recordSuccess(group.worker)
        guard response.rowsRejected == 0, response.rowsStored == UInt64(expected) else {
            throw .unavailable("worker \(group.worker) stored \(response.rowsStored) of \(expected) rows of \(collection) and rejected \(response.rowsRejected) (its shard map version is \(response.shardMapVersion), the coordinator routed with \(shardMapVersion)); retry the load")
        }
    }

    /// One SearchLists, sent as a message on the worker's search stream.
    func searchLists(_ request: Quiver_V1_SearchListsRequest, on worker: WorkerID,
                     timeout: Duration?) async throws -> Quiver_V1_SearchListsResponse {
        do {
            var message = Quiver_V1_SearchListsStreamRequest()
            message.search = request
            if let timeout { message.timeoutMs = timeout.timeoutMilliseconds }
            let route = try searchRoute(worker)
            let answer: Quiver_V1_SearchListsStreamResponse
            if let framed = route.framed {
                let started = ContinuousClock.now
                do {
                    answer = try await framed.call(message, timeout: timeout)
                } catch let error as RPCError where error.code == .unavailable {
                    // The framed port failed (refused, closed, or going away) where gRPC may not
                    // have: a search is read-only, so the time left goes to the gRPC stream.
                    noteFramedFallback(worker, error)
                    let left = timeout.map { $0 - (ContinuousClock.now - started) }
                    if let left, left <= .zero { throw RPCError(code: .deadlineExceeded, message: "no answer within the time limit (framed port: \(error.message))") }
                    if let left { message.timeoutMs = left.timeoutMilliseconds }
                    answer = try await route.grpc.call(message, timeout: left)
                }
            } else {
                answer = try await route.grpc.call(message, timeout: timeout)
            }
            switch answer.outcome {
            case .result(let response):
                recordSuccess(worker)
                return response
            case .error(let error):
                throw error.rpcError
            case nil:
                throw RPCError(code: .internalError, message: "worker \(worker) answered search \(answer.requestID) with neither result nor error")
            }
        } catch {
            // The caller's cancellation, a bad request or a worker that merely lacks state says
            // nothing about the worker's health.
            let code = (error as? RPCError)?.code
            if !(error is CancellationError), code.map({ $0.isRequestFault || $0.isWorkerStateFault }) != true {
                recordFailure(worker, error)
            } else if code != nil {
                recordSuccess(worker)
            }
            throw error
        }
    }

    func dropCollection(_ collection: String, on worker: WorkerID) async throws(CoordinatorError) {
        var request = Quiver_V1_WorkerDropCollectionRequest()
        request.collection = collection
        do {
            _ = try await client(worker).dropCollection(request, metadata: callMetadata, options: .worker(timeout: .seconds(60)))
            recordSuccess(worker)
        } catch {
            recordFailure(worker, error)
            throw CoordinatorError.wrapping(error, context: "dropping \(collection) on worker \(worker)")
        }
    }
}
