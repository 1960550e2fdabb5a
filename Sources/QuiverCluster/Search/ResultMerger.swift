import QuiverIndex

/// How much of a search batch's probed data was answered, per query and in total.
public struct SearchCoverage: Sendable, Equatable {
    /// Lists probed per query (the lists the coarse step chose).
    public let listsProbed: [Int]
    /// Probed lists per query whose owner answered.
    public var listsAnswered: [Int]
    public var workersQueried = 0
    public var workersAnswered = 0

    public init(listsProbed: [Int]) {
        self.listsProbed = listsProbed
        self.listsAnswered = [Int](repeating: 0, count: listsProbed.count)
    }

    public var totalProbed: Int { listsProbed.reduce(0, +) }
    public var totalAnswered: Int { listsAnswered.reduce(0, +) }
    public var isComplete: Bool { listsAnswered == listsProbed }

    /// Answered / probed for one query; a query that probed nothing is fully covered.
    public func fraction(ofQuery query: Int) -> Float {
        listsProbed[query] == 0 ? 1 : Float(listsAnswered[query]) / Float(listsProbed[query])
    }

    /// Answered / probed over the batch.
    public var fraction: Double {
        totalProbed == 0 ? 1 : Double(totalAnswered) / Double(totalProbed)
    }
}

/// Collects per-worker top-k answers of one batch and merges them into the global top-k.
///
/// Workers speak user scores (higher is better for IP/cosine, lower for L2); `SearchResults`
/// works in distances (lower is better), and `Metric.score(fromDistance:)` is its own inverse,
/// so one conversion serves both directions. Ids reported twice (a spilled vector found in both
/// of its lists) are merged by `SearchResults.merge`.
public struct ResultMerger: Sendable {
    public let queryCount: Int
    public let k: Int
    public let metric: Metric
    public private(set) var coverage: SearchCoverage
    private var parts: [SearchResults] = []
    /// Pairs already answered (`ProbedList.key`), so that a retried pair cannot be counted twice.
    private var answered = KeySet()

    /// `listsProbed[q]` is how many lists query `q` probed in total.
    public init(queryCount: Int, k: Int, metric: Metric, listsProbed: [Int]) {
        precondition(listsProbed.count == queryCount, "one probe count per query")
        self.queryCount = queryCount
        self.k = k
        self.metric = metric
        self.coverage = SearchCoverage(listsProbed: listsProbed)
    }

    /// Records that a request was sent and failed (timeout, unavailable, error).
    public mutating func recordFailure(of request: ShardRequest) {
        coverage.workersQueried += 1
    }

    /// Adds one worker's answer: `ids`/`scores` hold `request.queries.count × answerK` slots in
    /// request row order; `skipped` are the pairs the worker reports it did not scan. With
    /// re-ranking the answer is candidates: `scores` are estimates and `exactScores` exact.
    public mutating func add(_ request: ShardRequest, answerK: Int, ids: [Int64], scores: [Float],
                             exactScores: [Float] = [], skipped: [ProbedList] = []) throws(ScatterError) {
        let rows = request.queries.count
        guard answerK >= 0, ids.count == rows * answerK, scores.count == rows * answerK,
              exactScores.isEmpty || exactScores.count == rows * answerK else {
            throw .malformedAnswer(worker: request.worker, "\(ids.count) ids, \(scores.count) scores and \(exactScores.count) exact scores for \(rows) queries × k \(answerK)")
        }
        guard parts.isEmpty || parts[0].exactDistances.isEmpty == exactScores.isEmpty else {
            throw .malformedAnswer(worker: request.worker, "re-ranked and plain answers mixed in one batch")
        }
        guard request.queries.allSatisfy({ $0 >= 0 && $0 < queryCount }) else {
            throw .shapeMismatch("request for worker \(request.worker) names queries outside the batch of \(queryCount)")
        }
        coverage.workersQueried += 1
        coverage.workersAnswered += 1
        let skippedSet = Set(skipped)
        for pair in request.probedLists where (skippedSet.isEmpty || !skippedSet.contains(pair)) && answered.insert(pair.key) {
            coverage.listsAnswered[pair.query] += 1
        }
        guard answerK > 0 else { return }
        // Spread the worker's rows into a batch-wide part; unrepresented queries stay empty.
        var part = SearchResults(queryCount: queryCount, k: answerK)
        if !exactScores.isEmpty { part.exactDistances = [Float](repeating: .infinity, count: queryCount * answerK) }
        for (row, query) in request.queries.enumerated() {
            for slot in 0 ..< answerK {
                let id = ids[row * answerK + slot]
                guard id >= 0 else { continue }
                part.ids[query * answerK + slot] = id
                part.distances[query * answerK + slot] = metric.score(fromDistance: scores[row * answerK + slot])
                if !exactScores.isEmpty {
                    part.exactDistances[query * answerK + slot] = metric.score(fromDistance: exactScores[row * answerK + slot])
                }
            }
        }
        parts.append(part)
    }

    /// The global top-k (distances; convert with `userScores`). Re-ranked answers merge as one
    /// index would: the best `reorderK` candidates by estimate, then the best k by exact score.
    public func finish(reorderK: Int = 0) -> SearchResults {
        guard !parts.isEmpty else { return SearchResults(queryCount: queryCount, k: k) }
        if !parts[0].exactDistances.isEmpty {
            return SearchResults.mergeCandidates(parts, reorderK: max(k, reorderK), k: k)
        }
        return SearchResults.merge(parts, k: k)
    }

    /// Scores as the user sees them; empty slots become the worst score (−∞ for IP/cosine, +∞ for L2).
    public func userScores(of results: SearchResults) -> [Float] {
        results.distances.map { metric.score(fromDistance: $0) }
    }
}
