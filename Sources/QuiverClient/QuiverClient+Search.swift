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
        let limit = timeout ?? self.timeout
        var message = Quiver_V1_SearchStreamRequest()
        message.search = request
        message.timeoutMs = limit.timeoutMilliseconds
        let response = try await call {
            let answer: Quiver_V1_SearchStreamResponse
            if let framed = nextFramedSearches {
                let started = ContinuousClock.now
                do {
                    answer = try await framed.call(message, timeout: limit)
                } catch let error as RPCError where error.code == .unavailable {
                    // The framed port failed (refused, closed, going away) where gRPC may not
                    // have: a search is read-only, so the time left goes to the gRPC stream.
                    let left = limit - (ContinuousClock.now - started)
                    guard left > .zero else { throw RPCError(code: .deadlineExceeded, message: "no answer within the time limit (framed port: \(error.message))") }
                    var again = message
                    again.timeoutMs = left.timeoutMilliseconds
                    answer = try await searches.call(again, timeout: left)
                }
            } else {
                answer = try await searches.call(message, timeout: limit)
            }
            switch answer.outcome {
            case .result(let response): return response
            case .error(let error): throw error.rpcError
            case nil: throw RPCError(code: .internalError, message: "search \(answer.requestID) was answered with neither result nor error")
            }
        }
        return try await call {
            let results = response.results
            let coverage = response.coverage.listsProbed == 0 ? 1 : Double(response.coverage.listsAnswered) / Double(response.coverage.listsProbed)
            return SearchHits(queryCount: Int(results.queryCount), k: Int(results.k), ids: try results.unpackedIDs(),
                              scores: try results.unpackedScores(), coverage: coverage)
        }
    }
}
