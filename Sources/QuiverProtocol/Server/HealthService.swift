import GRPCCore

/// The standard `grpc.health.v1.Health` service (what Kubernetes gRPC probes and
/// grpc_health_probe call), answering from the server's own judgement of itself: `status`
/// returns the state of a service name, nil for a name it does not know. Conventionally ""
/// means "the process is up" (a liveness probe) and the service's full name means "ready to
/// answer its RPCs" (a readiness probe).
public struct HealthService: Grpc_Health_V1_Health.SimpleServiceProtocol {
    public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    private let status: @Sendable (String) -> Status?
    private let stopping: ShutdownSignal?
    /// How often a Watch re-reads the status to report changes.
    private let watchInterval: Duration

    public init(stopping: ShutdownSignal? = nil, watchInterval: Duration = .seconds(1),
                status: @escaping @Sendable (String) -> Status?) {
        self.status = status
        self.stopping = stopping
        self.watchInterval = watchInterval
    }

    public func check(request: Grpc_Health_V1_HealthCheckRequest,
                      context: ServerContext) async throws -> Grpc_Health_V1_HealthCheckResponse {
        guard let current = status(request.service) else {
            throw RPCError(code: .notFound, message: "this server does not serve \"\(request.service.prefix(128))\"")
        }
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = current
        return response
    }

    public func watch(request: Grpc_Health_V1_HealthCheckRequest, response: RPCWriter<Grpc_Health_V1_HealthCheckResponse>,
                      context: ServerContext) async throws {
        let stopped = CancellationFlag()
        stopping?.onStop { stopped.set() }
        var last: Status?
        while !Task.isCancelled && !context.cancellation.isCancelled && !stopped.isSet {
            let current = status(request.service) ?? .serviceUnknown
            if current != last {
                var message = Grpc_Health_V1_HealthCheckResponse()
                message.status = current
                try await response.write(message)
                last = current
            }
            try await Task.sleep(for: watchInterval)
        }
    }
}

import Synchronization

/// Set once (a cancel message, a shutdown), read by loops and scans polling for it.
public final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)
    public init() {}
    public var isSet: Bool { value.load(ordering: .relaxed) }
    public func set() { value.store(true, ordering: .relaxed) }
}
