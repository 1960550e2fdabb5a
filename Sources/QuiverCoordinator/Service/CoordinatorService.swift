import GRPCCore
import QuiverProtocol

/// The client-facing gRPC service: unwraps requests, calls the `Coordinator`, wraps replies,
/// and turns `CoordinatorError`s into statuses. No decisions are made here.
struct CoordinatorService: Quiver_V1_Coordinator.ServiceProtocol {
    let coordinator: Coordinator
    /// Fires when the server begins shutting down: open search streams then end.
    let stopping: ShutdownSignal
    let credentials: ServerCredentials
    /// Searches that arrive together (on one stream or several calls) are answered together.
    private let coalescer: SearchCoalescer

    init(coordinator: Coordinator, stopping: ShutdownSignal, credentials: ServerCredentials) {
        self.coordinator = coordinator
        self.stopping = stopping
        self.credentials = credentials
        coalescer = SearchCoalescer(coordinator: coordinator)
    }

    /// What each method demands of its caller (checked by the interceptor before the handler).
    static func requirement(_ method: MethodDescriptor) -> AccessRequirement {
        guard method.service.fullyQualifiedService == Quiver_V1_Coordinator.descriptor.fullyQualifiedService else { return .none }
        switch method.method {
        case "DescribeCollection", "ListCollections", "Search", "SearchStream", "ClusterStatus", "LoadStatus":
            return .role(.read)
        case "CreateCollection", "DropCollection", "Train", "Load", "LoadFiles", "Delete":
            return .role(.write)
        case "RegisterWorker":
            return .joinCredential
        default:
            return .role(.admin)
        }
    }

    /// Runs `body`, mapping its typed error to the status the client sees.
    private func respond<Output>(_ body: () async throws(CoordinatorError) -> Output) async throws -> ServerResponse<Output> {
        do {
            return ServerResponse(message: try await body())
        } catch {
            throw error.rpcError
        }
    }

    func createCollection(request: ServerRequest<Quiver_V1_CreateCollectionRequest>,
                          context: ServerContext) async throws -> ServerResponse<Quiver_V1_CreateCollectionResponse> {
        try await respond { () throws(CoordinatorError) in
            var response = Quiver_V1_CreateCollectionResponse()
            response.collection = try await coordinator.createCollection(request.message.config)
            return response
        }
    }

    func describeCollection(request: ServerRequest<Quiver_V1_DescribeCollectionRequest>,
                            context: ServerContext) async throws -> ServerResponse<Quiver_V1_DescribeCollectionResponse> {
        try await respond { () throws(CoordinatorError) in
            var response = Quiver_V1_DescribeCollectionResponse()
            response.collection = try await coordinator.describe(request.message.collection)
            return response
        }
    }

    func listCollections(request: ServerRequest<Quiver_V1_ListCollectionsRequest>,
                         context: ServerContext) async throws -> ServerResponse<Quiver_V1_ListCollectionsResponse> {
        try await respond { () throws(CoordinatorError) in
            var response = Quiver_V1_ListCollectionsResponse()
            response.collections = await coordinator.listCollections()
            return response
        }
    }

    func dropCollection(request: ServerRequest<Quiver_V1_DropCollectionRequest>,
                        context: ServerContext) async throws -> ServerResponse<Quiver_V1_DropCollectionResponse> {
        try await respond { () throws(CoordinatorError) in
            var response = Quiver_V1_DropCollectionResponse()
            response.existed = try await coordinator.drop(request.message.collection, ifExists: request.message.ifExists)
            return response
        }
    }

    func train(request: ServerRequest<Quiver_V1_TrainRequest>,
               context: ServerContext) async throws -> ServerResponse<Quiver_V1_TrainResponse> {
        try await respond { () throws(CoordinatorError) in try await coordinator.train(request.message) }
    }

    func load(request: StreamingServerRequest<Quiver_V1_LoadRequest>,
              context: ServerContext) async throws -> ServerResponse<Quiver_V1_LoadResponse> {
        do {
            return ServerResponse(message: try await coordinator.load(request.messages))
        } catch {
            // The caller resumes from here (with the same load id, nothing is stored twice).
            var failure = error.error.rpcError
            failure.metadata.addString("\(error.acknowledgedThrough)", forKey: Self.acknowledgedThroughKey)
            throw failure
        }
    }

    /// Trailing metadata of a failed Load: every row of the load before this one is stored.
    static let acknowledgedThroughKey = "quiver-acknowledged-through"

    func loadFiles(request: ServerRequest<Quiver_V1_LoadFilesRequest>,
                   context: ServerContext) async throws -> ServerResponse<Quiver_V1_LoadFilesResponse> {
        try await respond { () throws(CoordinatorError) in try await coordinator.startLoadFiles(request.message) }
    }

    func loadStatus(request: ServerRequest<Quiver_V1_LoadStatusRequest>,
                    context: ServerContext) async throws -> ServerResponse<Quiver_V1_LoadStatusResponse> {
        try await respond { () throws(CoordinatorError) in try await coordinator.loadStatus(request.message.loadJobID) }
    }

    func search(request: ServerRequest<Quiver_V1_SearchRequest>,
                context: ServerContext) async throws -> ServerResponse<Quiver_V1_SearchResponse> {
        let timeout = request.metadata[stringValues: GRPCTimeoutHeader.name].first(where: { _ in true }).flatMap(GRPCTimeoutHeader.parse)
        return try await respond { () throws(CoordinatorError) in try await coalescer.search(request.message, timeout: timeout).get() }
    }

    func searchStream(request: StreamingServerRequest<Quiver_V1_SearchStreamRequest>,
                      context: ServerContext) async throws -> StreamingServerResponse<Quiver_V1_SearchStreamResponse> {
        let (coalescer, stopping) = (coalescer, stopping)
        return StreamingServerResponse { writer in
            try await CallStream.serve(request.messages, writer: writer, stop: stopping) { message in
                var answer = Quiver_V1_SearchStreamResponse()
                answer.requestID = message.requestID
                let timeout: Duration? = message.timeoutMs > 0 ? .milliseconds(Int64(message.timeoutMs)) : nil
                switch await coalescer.search(message.search, timeout: timeout) {
                case .success(let response): answer.result = response
                case .failure(let error): answer.error = Quiver_V1_CallError(error.rpcError)
                }
                return answer
            }
            return [:]
        }
    }

    func clusterStatus(request: ServerRequest<Quiver_V1_ClusterStatusRequest>,
                       context: ServerContext) async throws -> ServerResponse<Quiver_V1_ClusterStatusResponse> {
        try await respond { () throws(CoordinatorError) in await coordinator.clusterStatus() }
    }

    func registerWorker(request: ServerRequest<Quiver_V1_RegisterWorkerRequest>,
                        context: ServerContext) async throws -> ServerResponse<Quiver_V1_RegisterWorkerResponse> {
        // The interceptor let a join token or an admin token through; only an admin may re-address.
        let mayReaddress = credentials.tokens == nil || (try? credentials.role(of: request.metadata)) == .admin
        return try await respond { () throws(CoordinatorError) in
            var response = Quiver_V1_RegisterWorkerResponse()
            response.workersKnown = UInt32(try await coordinator.registerWorker(address: request.message.address,
                                                                                 id: request.message.workerID,
                                                                                 mayReaddress: mayReaddress))
            return response
        }
    }

    func delete(request: ServerRequest<Quiver_V1_DeleteRequest>,
                context: ServerContext) async throws -> ServerResponse<Quiver_V1_DeleteResponse> {
        try await respond { () throws(CoordinatorError) in try await coordinator.delete(request.message) }
    }

    func drainWorker(request: ServerRequest<Quiver_V1_DrainWorkerRequest>,
                     context: ServerContext) async throws -> ServerResponse<Quiver_V1_DrainWorkerResponse> {
        try await respond { () throws(CoordinatorError) in
            var response = Quiver_V1_DrainWorkerResponse()
            response.listsMoving = UInt32(try await coordinator.drain(request.message.workerID))
            return response
        }
    }

    func removeWorker(request: ServerRequest<Quiver_V1_RemoveWorkerRequest>,
                      context: ServerContext) async throws -> ServerResponse<Quiver_V1_RemoveWorkerResponse> {
        try await respond { () throws(CoordinatorError) in
            var response = Quiver_V1_RemoveWorkerResponse()
            response.workersKnown = UInt32(try await coordinator.removeWorker(request.message.workerID))
            return response
        }
    }
}
