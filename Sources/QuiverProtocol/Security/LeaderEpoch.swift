import GRPCCore
import Synchronization

/// Fencing on the workers' side of the internal hop: a coordinator that leads through etcd sends
/// the revision its leadership began at (`quiver-leader-epoch`) on every call, and a worker
/// refuses calls from an epoch older than the newest it has seen, so a deposed leader that
/// wakes (frozen, or cut off) cannot store, move or drop anything before it notices. Calls
/// without the header (a coordinator on local files) pass.
public final class LeaderEpochInterceptor: ServerInterceptor, Sendable {
    public static let header = "quiver-leader-epoch"
    private let newest = Atomic<Int64>(0)

    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        if let text = request.metadata[stringValues: Self.header].first(where: { _ in true }) {
            guard let epoch = Int64(text), epoch > 0 else {
                throw RPCError(code: .invalidArgument, message: "\(Self.header) must be a positive integer, got \"\(text.prefix(32))\"")
            }
            try admit(epoch)
        }
        return try await next(request, context)
    }

    /// Records `epoch` as seen, or refuses it when a newer one was.
    public func admit(_ epoch: Int64) throws(RPCError) {
        var current = newest.load(ordering: .relaxed)
        while epoch > current {
            let (exchanged, original) = newest.compareExchange(expected: current, desired: epoch, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
        guard epoch == current else {
            throw RPCError(code: .failedPrecondition, message: "a coordinator of a later leadership (epoch \(current)) leads this "
                + "cluster; this call from epoch \(epoch) is refused (the coordinator that sent it no longer leads)")
        }
    }
}
