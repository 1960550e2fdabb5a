import GRPCCore
import QuiverProtocol

/// The coordinator's framed search port (`--search-listen`, proto/quiver/v1/framing.proto):
/// SearchStream's messages as frames on a client's long-lived connections, admitted by the
/// gRPC port's rules for SearchStream (a token with the read role, when tokens are required)
/// and answered as `CoordinatorService.searchStream` answers them. Standbys answer too, from
/// their view of the state, as they do on gRPC.
struct CoordinatorSearchResponder: FramedResponder {
    typealias Request = Quiver_V1_SearchStreamRequest
    typealias Response = Quiver_V1_SearchStreamResponse

    let coordinator: Coordinator
    let credentials: ServerCredentials

    var method: String { FramedMethod.search }

    func admit(_ peer: FramedPeer) throws(RPCError) {
        try credentials.check(CoordinatorService.requirement(Quiver_V1_Coordinator.Method.SearchStream.descriptor), peer: peer)
    }

    func answer(_ request: Request, call: FramedCall, reply: FramedReply<Response>) {
        let coordinator = coordinator
        // The search starts on the connection's thread (its answer is written there), and a
        // cancel frame or the connection's end cancels it.
        let task = Task(executorPreference: call.executor) {
            var answer = Response()
            answer.requestID = call.requestID
            let timeout = call.deadline.map { $0 - ContinuousClock.now }
            do throws(CoordinatorError) {
                if let timeout, timeout <= .zero { throw .deadlineExceeded("the request's time limit passed before it was read") }
                answer.result = try await coordinator.search(request.search, timeout: timeout)
            } catch {
                answer.error = Quiver_V1_CallError(error.rpcError)
            }
            reply(answer)
        }
        call.onCancel { task.cancel() }
    }
}
