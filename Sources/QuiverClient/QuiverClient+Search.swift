import GRPCCore
import QuiverProtocol

/// Nearest neighbours of a batch of queries: `k` ids and scores per query, best first. Scores
/// are inner products (IP, cosine) or squared L2 distances; empty slots have id −1.
public struct SearchHits: Sendable {
    public let queryCount: Int
    public let k: Int
    public let ids: [Int64]
    public let scores: [Float]
    /// Probed lists that answered / probed lists, over the whole batch (1 when complete).
    public let coverage: Double

    /// The answers of several requests, one after another, as one batch (coverage weighted by
    /// each request's queries).
    public init(concatenating parts: [SearchHits]) {
        let queries = parts.reduce(0) { $0 + $1.queryCount }
        queryCount = queries
        k = parts.first?.k ?? 0
        ids = parts.flatMap(\.ids)
        scores = parts.flatMap(\.scores)
        coverage = queries > 0 ? parts.reduce(0) { $0 + $1.coverage * Double($1.queryCount) } / Double(queries) : 1
    }

    init(queryCount: Int, k: Int, ids: [Int64], scores: [Float], coverage: Double) {
        self.queryCount = queryCount
        self.k = k
        self.ids = ids
        self.scores = scores
        self.coverage = coverage
    }

    public func ids(ofQuery query: Int) -> ArraySlice<Int64> { ids[query * k ..< (query + 1) * k] }
    public func scores(ofQuery query: Int) -> ArraySlice<Float> { scores[query * k ..< (query + 1) * k] }
}

extension QuiverClient {
    /// Searches `queries` (`count × dimension`, row-major). With `nprobe`, `reorderK` and
    /// `recall` all nil the search uses the settings calibrated for the collection's recall
    /// target; `recall` (instead of `nprobe`/`reorderK`) names another target. `timeout` bounds
    /// this call end to end.
    public func search(_ collection: String, queries: [Float], dimension: Int, k: Int,
                       nprobe: Int? = nil, reorderK: Int? = nil, recall: Double? = nil, requireFullCoverage: Bool = false,
                       timeout: Duration? = nil) async throws(QuiverClientError) -> SearchHits {
        guard dimension > 0, queries.count % dimension == 0, !queries.isEmpty else {
            throw QuiverClientError(code: .invalidArgument, message: "\(queries.count) values do not form query rows of dimension \(dimension)")
        }
        var request = Quiver_V1_SearchRequest()
        request.collection = collection
        request.k = UInt32(clamping: max(0, k))
        request.queries = Quiver_V1_FloatMatrix(rows: queries.count / dimension, dimension: dimension, values: queries)
        request.nprobe = UInt32(clamping: max(0, nprobe ?? 0))
        if let reorderK { request.reorderK = UInt32(clamping: max(0, reorderK)) }
        if let recall { request.recallTarget = Float(recall) }
        request.requireFullCoverage = requireFullCoverage
        let deadline = ContinuousClock.now + (timeout ?? self.timeout)
        var message = Quiver_V1_SearchStreamRequest()
        message.search = request
        let response: Quiver_V1_SearchResponse
        do {
            let answer = try await resending(message, until: deadline)
            switch answer.outcome {
            case .result(let result): response = result
            case .error(let error): throw error.rpcError
            case nil: throw RPCError(code: .internalError, message: "search \(answer.requestID) was answered with neither result nor error")
            }
        } catch {
            throw Self.clientError(error)
        }
        return try await call {
            let results = response.results
            let coverage = response.coverage.listsProbed == 0 ? 1 : Double(response.coverage.listsAnswered) / Double(response.coverage.listsProbed)
            return SearchHits(queryCount: Int(results.queryCount), k: Int(results.k), ids: try results.unpackedIDs(),
                              scores: try results.unpackedScores(), coverage: coverage)
        }
    }

    /// How long a search whose transport failed is sent again (within its own time limit): a
    /// standby takes over from a dead leader within its lease's TTL and its polling.
    static let resendWindow: Duration = .seconds(8)

    /// Sends a search and returns the coordinator's answer (an error it gave included). When the
    /// transport carrying the search fails instead — the connection closed under it (its
    /// coordinator died, a keepalive went unanswered) or no coordinator is reachable yet — the
    /// search is sent again, over a new stream to a coordinator that answers, for up to
    /// `resendWindow`: a search changes nothing, so sending it twice does no harm. A search a
    /// coordinator refused without running it (a standby that does not see the collection ready
    /// yet) is sent again the same way.
    private func resending(_ message: Quiver_V1_SearchStreamRequest,
                           until deadline: ContinuousClock.Instant) async throws -> Quiver_V1_SearchStreamResponse {
        let resendUntil = min(deadline, ContinuousClock.now + Self.resendWindow)
        var delay = Duration.milliseconds(50)
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { throw RPCError(code: .deadlineExceeded, message: "no answer within the time limit") }
            var message = message
            message.timeoutMs = left.timeoutMilliseconds
            do {
                let answer = try await sendOnce(message, timeout: left)
                // A standby that does not see the collection ready yet refuses; the next
                // coordinator in turn (or this one, a moment later) answers.
                guard case .error(let refusal) = answer.outcome, refusal.rpcError.code == .unavailable,
                      Self.neverRan(refusal.rpcError.message), ContinuousClock.now + delay < resendUntil else { return answer }
            } catch let error as RPCError where error.code == .unavailable && !searches.isClosed && ContinuousClock.now + delay < resendUntil {
                // The transport failed under it: sent again below.
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(1))
        }
    }

    /// One attempt: over a framed port when there are any (falling back to gRPC for the time
    /// left if the port fails), else over the gRPC search stream.
    private func sendOnce(_ message: Quiver_V1_SearchStreamRequest, timeout limit: Duration) async throws -> Quiver_V1_SearchStreamResponse {
        guard let framed = nextFramedSearches else { return try await searches.call(message, timeout: limit) }
        let started = ContinuousClock.now
        do {
            return try await framed.call(message, timeout: limit)
        } catch let error as RPCError where error.code == .unavailable {
            // The framed port failed (refused, closed, going away) where gRPC may not have.
            let left = limit - (ContinuousClock.now - started)
            guard left > .zero else { throw RPCError(code: .deadlineExceeded, message: "no answer within the time limit (framed port: \(error.message))") }
            var again = message
            again.timeoutMs = left.timeoutMilliseconds
            return try await searches.call(again, timeout: left)
        }
    }
}
