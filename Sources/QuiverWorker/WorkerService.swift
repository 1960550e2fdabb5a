import Dispatch
import GRPCCore
import QuiverProtocol
import Synchronization

/// The gRPC face of a `ShardWorker`: reads request streams and runs each operation on a
/// dispatch thread, because encoding, scanning and fsync block for long stretches and would
/// otherwise stall Swift's small cooperative thread pool (and with it every other RPC).
public struct WorkerService: Quiver_V1_Worker.SimpleServiceProtocol {
    public let worker: ShardWorker
    /// Fires when the server begins shutting down: open search streams then end.
    let stopping: ShutdownSignal

    public init(worker: ShardWorker, stopping: ShutdownSignal = ShutdownSignal()) {
        self.worker = worker
        self.stopping = stopping
    }

    /// Every Worker method is for the coordinator alone (its certificate and/or the join token).
    public static func requirement(_ method: MethodDescriptor) -> AccessRequirement {
        method.service.fullyQualifiedService == Quiver_V1_Worker.descriptor.fullyQualifiedService ? .coordinator : .none
    }

    public func installModel(request: RPCAsyncSequence<Quiver_V1_InstallModelChunk, any Error>,
                             context: ServerContext) async throws -> Quiver_V1_InstallModelResponse {
        var upload = ModelUpload(maxBytes: worker.options.maxModelBytes)
        for try await chunk in request { try upload.add(chunk) }
        let bytes = try upload.finish()
        let (worker, collection, version) = (worker, upload.collection, upload.version)
        return try await offload { () throws(RPCError) in try worker.installModel(collection: collection, version: version, bytes: bytes) }
    }

    public func assignLists(request: Quiver_V1_AssignListsRequest, context: ServerContext) async throws -> Quiver_V1_AssignListsResponse {
        let worker = worker
        return try await offload { () throws(RPCError) in try worker.assignLists(request) }
    }

    public func ingest(request: RPCAsyncSequence<Quiver_V1_IngestRequest, any Error>,
                       context: ServerContext) async throws -> Quiver_V1_IngestResponse {
        let worker = worker
        var session = IngestSession()
        for try await message in request {
            let current = session
            do {
                session = try await offload { () throws(RPCError) in
                    var next = current
                    try worker.ingest(message, session: &next)
                    return next
                }
            } catch {
                // Earlier messages are durable already; say so, so the caller does not resend them blindly.
                guard session.rowsStored > 0 else { throw error }
                throw RPCError(code: error.code, message: error.message
                    + " (\(session.rowsStored) rows of earlier messages in this stream are stored)")
            }
        }
        return session.response
    }

    public func searchLists(request: Quiver_V1_SearchListsRequest, context: ServerContext) async throws -> Quiver_V1_SearchListsResponse {
        let handle = context.cancellation
        let taskCancelled = Atomic<Bool>(false)
        return try await withTaskCancellationHandler {
            try await search(request) { handle.isCancelled || taskCancelled.load(ordering: .relaxed) }
        } onCancel: {
            taskCancelled.store(true, ordering: .relaxed)
        }
    }

    public func searchListsStream(request: RPCAsyncSequence<Quiver_V1_SearchListsStreamRequest, any Error>,
                                  response: RPCWriter<Quiver_V1_SearchListsStreamResponse>, context: ServerContext) async throws {
        let handle = context.cancellation
        try await CallStream.serve(request, writer: response, stop: stopping) { message in
            var answer = Quiver_V1_SearchListsStreamResponse()
            answer.requestID = message.requestID
            let deadline = message.timeoutMs > 0 ? ContinuousClock.now + .milliseconds(Int64(message.timeoutMs)) : nil
            let search = message.search
            // Stops on the stream's end, on a cancel message for this search, or at its time limit.
            let cancelled = CancellationFlag()
            let stop: @Sendable () -> Bool = {
                handle.isCancelled || cancelled.isSet || deadline.map { ContinuousClock.now >= $0 } == true
            }
            let outcome = await withTaskCancellationHandler {
                do throws(RPCError) {
                    return Result<Quiver_V1_SearchListsResponse, RPCError>.success(try await self.search(search, isCancelled: stop))
                } catch {
                    return .failure(error)
                }
            } onCancel: {
                cancelled.set()
            }
            switch outcome {
            case .success(let result): answer.result = result
            case .failure(let error): answer.error = Quiver_V1_CallError(error)
            }
            return answer
        }
    }

    /// Runs one search on the blocking pool, so concurrent searches (which all arrive on the
    /// coordinator's one connection, hence one event-loop thread) use every core. A worker with
    /// a single search thread gains nothing from the pool and runs small searches on the
    /// connection's thread instead, saving two thread hand-offs.
    private func search(_ request: Quiver_V1_SearchListsRequest,
                        isCancelled: @escaping @Sendable () -> Bool) async throws(RPCError) -> Quiver_V1_SearchListsResponse {
        if worker.options.threads == 1 && request.queries.rows <= 8 {
            return try worker.searchLists(request, isCancelled: isCancelled)
        }
        let worker = worker
        return try await offload { () throws(RPCError) in try worker.searchLists(request, isCancelled: isCancelled) }
    }

    public func stats(request: Quiver_V1_WorkerStatsRequest, context: ServerContext) async throws -> Quiver_V1_WorkerStatsResponse {
        worker.stats(request)
    }

    public func deleteIDs(request: Quiver_V1_DeleteIDsRequest, context: ServerContext) async throws -> Quiver_V1_DeleteIDsResponse {
        let worker = worker
        return try await offload { () throws(RPCError) in try worker.deleteIDs(request) }
    }

    public func lookupIDs(request: Quiver_V1_LookupIDsRequest, context: ServerContext) async throws -> Quiver_V1_LookupIDsResponse {
        let worker = worker
        return try await offload { () throws(RPCError) in try worker.lookupIDs(request) }
    }

    public func exportList(request: Quiver_V1_ExportListRequest, response: RPCWriter<Quiver_V1_ListChunk>,
                           context: ServerContext) async throws {
        let worker = worker
        let chunks = try await offload { () throws(RPCError) in try worker.exportList(request) }
        for chunk in chunks { try await response.write(chunk) }
    }

    public func importList(request: RPCAsyncSequence<Quiver_V1_ListChunk, any Error>,
                           context: ServerContext) async throws -> Quiver_V1_ImportListResponse {
        var chunks: [Quiver_V1_ListChunk] = []
        var bytes = 0
        for try await chunk in request {
            bytes += chunk.ids.count + chunk.codes.count + chunk.vectors.count
            guard bytes <= worker.options.maxModelBytes else {
                throw RPCError(code: .resourceExhausted, message: "ImportList: a list copy larger than \(worker.options.maxModelBytes) bytes")
            }
            chunks.append(chunk)
        }
        let (worker, received) = (worker, chunks)
        return try await offload { () throws(RPCError) in try worker.importList(received) }
    }

    public func listDigests(request: Quiver_V1_ListDigestsRequest, context: ServerContext) async throws -> Quiver_V1_ListDigestsResponse {
        let worker = worker
        return try await offload { () throws(RPCError) in try worker.listDigests(request) }
    }

    public func compact(request: Quiver_V1_CompactRequest, context: ServerContext) async throws -> Quiver_V1_CompactResponse {
        let worker = worker
        return try await offload { () throws(RPCError) in try worker.compact(request) }
    }

    public func dropCollection(request: Quiver_V1_WorkerDropCollectionRequest,
                               context: ServerContext) async throws -> Quiver_V1_WorkerDropCollectionResponse {
        let worker = worker
        return try await offload { () throws(RPCError) in try worker.dropCollection(request) }
    }
}

let blockingWork = DispatchQueue(label: "quiver.worker.blocking", qos: .userInitiated, attributes: .concurrent)

/// Runs `body` on a dispatch thread and waits for it without blocking the caller's thread.
func offload<Result: Sendable>(_ body: @escaping @Sendable () throws(RPCError) -> Result) async throws(RPCError) -> Result {
    let outcome: Swift.Result<Result, RPCError> = await withCheckedContinuation { continuation in
        blockingWork.async {
            continuation.resume(returning: Swift.Result { () throws(RPCError) in try body() })
        }
    }
    return try outcome.get()
}
