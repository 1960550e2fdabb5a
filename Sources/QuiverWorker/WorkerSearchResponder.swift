import GRPCCore
import QuiverProtocol

/// The worker's framed search port (`--search-listen`, proto/quiver/v1/framing.proto):
/// SearchListsStream's messages as frames on the coordinator's long-lived connections,
/// admitted by the gRPC port's rules (coordinator certificate, join token) and answered as
/// `WorkerService.searchListsStream` answers them.
struct WorkerSearchResponder: FramedResponder {
    typealias Request = Quiver_V1_SearchListsStreamRequest
    typealias Response = Quiver_V1_SearchListsStreamResponse

    /// Probed lists (over all queries) and re-rank depth up to which a search runs on the
    /// connection's event-loop thread: a few scans cost less than the two thread hand-offs of
    /// the blocking pool, and the coordinator keeps a connection per event loop, so concurrent
    /// small searches still spread over the cores. Work is counted in lists, not queries: one
    /// query probing thousands of lists would hold the loop (and the pings and hellos of every
    /// connection on it) for as long as it scans.
    static let inlineLists = 256
    static let inlineReorderK = 1_000

    let worker: ShardWorker
    let credentials: ServerCredentials

    var method: String { FramedMethod.searchLists }

    func admit(_ peer: FramedPeer) throws(RPCError) {
        try credentials.check(WorkerService.requirement(Quiver_V1_Worker.Method.SearchListsStream.descriptor), peer: peer)
    }

    func answer(_ request: Request, call: FramedCall, reply: FramedReply<Response>) {
        let worker = worker
        let search = request.search
        let run: @Sendable () -> Void = {
            var answer = Response()
            answer.requestID = call.requestID
            do throws(RPCError) {
                // Stops on a cancel frame, the connection's end, or the request's time limit.
                answer.result = try worker.searchLists(search, isCancelled: { call.shouldStop })
            } catch {
                answer.error = Quiver_V1_CallError(error)
            }
            reply(answer)
        }
        let lists = search.probeListIds.count / MemoryLayout<Int32>.size
        if lists <= Self.inlineLists && search.reorderK <= Self.inlineReorderK {
            run()
        } else {
            blockingWork.async(execute: run)
        }
    }
}
