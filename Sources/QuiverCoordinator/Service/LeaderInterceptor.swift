import GRPCCore
import QuiverProtocol

/// On a coordinator standing by, lets through what it answers from the stored state (searches,
/// descriptions, status) and refuses everything that changes state with `UNAVAILABLE`, naming
/// the leader, so that a client with several coordinator addresses retries there.
struct LeaderInterceptor: ServerInterceptor {
    let coordinator: Coordinator
    let leader: @Sendable () -> String

    static let answeredStandingBy: Set<String> = ["Search", "SearchStream", "DescribeCollection", "ListCollections", "ClusterStatus"]

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard coordinator.isLeader
            || context.descriptor.service.fullyQualifiedService != Quiver_V1_Coordinator.descriptor.fullyQualifiedService
            || Self.answeredStandingBy.contains(context.descriptor.method) else {
            throw RPCError(code: .unavailable, message: "this coordinator stands by and answers only searches and descriptions; "
                + "\(context.descriptor.method) goes to the leader (\(leader()))")
        }
        return try await next(request, context)
    }
}
