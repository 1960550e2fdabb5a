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

    let credentials: ServerCredentials
    private let coalescer: SearchCoalescer

    init(coordinator: Coordinator, credentials: ServerCredentials) {
        self.credentials = credentials
        coalescer = SearchCoalescer(coordinator: coordinator)
    }

    var method: String { FramedMethod.search }

    func admit(_ peer: FramedPeer) throws(RPCError) {
        try credentials.check(CoordinatorService.requirement(Quiver_V1_Coordinator.Method.SearchStream.descriptor), peer: peer)
    }

    /// Searches that arrive together are answered together (`SearchCoalescer`); each answer is
    /// written on the connection's thread, and a cancel frame or the connection's end answers
    /// its search as cancelled at once.
    func answer(_ request: Request, call: FramedCall, reply: FramedReply<Response>) {
        let started = ContinuousClock.now
        let timeout = call.deadline.map { $0 - started }
        let requestID = call.requestID
        let answer = { @Sendable (result: Result<Quiver_V1_SearchResponse, CoordinatorError>) in
            var answer = Response()
            answer.requestID = requestID
            switch result {
            case .success(let response): answer.result = response
            case .failure(let error): answer.error = Quiver_V1_CallError(error.rpcError)
            }
            reply(answer)
        }
        if let timeout, timeout <= .zero {
            return answer(.failure(.deadlineExceeded("the request's time limit passed before it was read")))
        }
        coalescer.submit(SearchCoalescer.Member(request: request.search, started: started, timeout: timeout,
                                                limitMs: request.timeoutMs, reply: answer,
                                                onCancel: { call.onCancel($0) }),
                         turn: .loop(call.executor))
    }
}
