/// One probed (query, list) pair of a search batch; `query` indexes the whole batch.
public struct ProbedList: Hashable, Sendable, Comparable {
    public let query: Int
    public let list: Int32

    public init(query: Int, list: Int32) {
        self.query = query
        self.list = list
    }

    public static func < (a: ProbedList, b: ProbedList) -> Bool {
        (a.query, a.list) < (b.query, b.list)
    }

    /// The pair as one number, for `KeySet` (queries and lists are below 2³¹).
    var key: UInt64 { UInt64(truncatingIfNeeded: query) << 32 | UInt64(UInt32(bitPattern: list)) }
}

/// What one worker is asked to scan: only the queries that probe one of its lists, each with
/// exactly the lists this worker was chosen for (CSR, as `SearchListsRequest` carries them).
public struct ShardRequest: Sendable, Equatable {
    public let worker: WorkerID
    /// Batch indices of the queries carried, ascending; request row `i` is query `queries[i]`.
    public let queries: [Int]
    /// `queries.count + 1` offsets into `probeListIDs`.
    public let probeOffsets: [UInt32]
    public let probeListIDs: [Int32]

    public init(worker: WorkerID, queries: [Int], probeOffsets: [UInt32], probeListIDs: [Int32]) {
        self.worker = worker
        self.queries = queries
        self.probeOffsets = probeOffsets
        self.probeListIDs = probeListIDs
    }

    /// The (query, list) pairs this request covers.
    public var probedLists: [ProbedList] {
        var pairs: [ProbedList] = []
        pairs.reserveCapacity(probeListIDs.count)
        for (row, query) in queries.enumerated() {
            for index in Int(probeOffsets[row]) ..< Int(probeOffsets[row + 1]) {
                pairs.append(ProbedList(query: query, list: probeListIDs[index]))
            }
        }
        return pairs
    }

    /// Decodes a CSR of lists in this request's row order (a worker's skipped lists) into batch
    /// pairs, checking the shape and that every pair was actually asked for.
    public func probedLists(offsets: [UInt32], lists: [Int32]) throws(ScatterError) -> [ProbedList] {
        if offsets.isEmpty && lists.isEmpty { return [] }
        guard offsets.count == queries.count + 1, offsets.first == 0, Int(offsets.last!) == lists.count else {
            throw .malformedAnswer(worker: worker, "skipped-list offsets have \(offsets.count) entries ending at \(offsets.last ?? 0) for \(queries.count) queries and \(lists.count) lists")
        }
        var pairs: [ProbedList] = []
        for row in queries.indices {
            let start = Int(offsets[row])
            let end = Int(offsets[row + 1])
            guard start <= end else {
                throw .malformedAnswer(worker: worker, "skipped-list offsets decrease at query row \(row)")
            }
            let asked = probeListIDs[Int(probeOffsets[row]) ..< Int(probeOffsets[row + 1])]
            for list in lists[start ..< end] {
                guard asked.contains(list) else {
                    throw .malformedAnswer(worker: worker, "reports list \(list) skipped for query \(queries[row]), which was not asked for")
                }
                pairs.append(ProbedList(query: queries[row], list: list))
            }
        }
        return pairs
    }
}

/// How one search batch is scattered: one request per involved worker, each list of each query
/// sent to exactly one live replica.
public struct ScatterPlan: Sendable, Equatable {
    /// Requests sorted by worker.
    public let requests: [ShardRequest]
    /// Probed lists whose replicas are all unavailable; they count against coverage.
    public let unroutable: [ProbedList]

    /// Plans a batch from coarse probes (`queryCount × nprobe` list ids, −1 ignored).
    ///
    /// - Parameters:
    ///   - unavailable: workers not to send to (marked down, or already failed for this batch).
    ///   - rotation: picks among live replicas; varying it across batches spreads load over
    ///     replicas while every list of one shard in one batch still goes to the same worker.
    ///     Rotation 0 picks each shard's first live replica; the ring placement already spreads
    ///     first replicas over the workers.
    ///   - replicas: replicas that are behind on a list are never asked for it.
    public init(probes: [Int32], queryCount: Int, nprobe: Int, shardMap: ShardMap,
                unavailable: Set<WorkerID> = [], replicas: ReplicaStates = ReplicaStates(), rotation: Int = 0) throws(ScatterError) {
        guard probes.count == queryCount * nprobe else {
            throw .shapeMismatch("\(probes.count) probes for \(queryCount) queries × nprobe \(nprobe)")
        }
        var pairs: [ProbedList] = []
        pairs.reserveCapacity(probes.count)
        for query in 0 ..< queryCount {
            for list in probes[query * nprobe ..< (query + 1) * nprobe] where list >= 0 {
                pairs.append(ProbedList(query: query, list: list))
            }
        }
        try self.init(lists: pairs, shardMap: shardMap, unavailable: unavailable, replicas: replicas, rotation: rotation)
    }

    /// Plans an arbitrary set of pairs, e.g. those a failed worker did not answer, excluding the
    /// workers already tried so that each retry moves to another replica.
    public init(lists pairs: [ProbedList], shardMap: ShardMap, unavailable: Set<WorkerID> = [],
                replicas: ReplicaStates = ReplicaStates(), rotation: Int = 0) throws(ScatterError) {
        // Pairs go into one bucket per worker. The replica chosen per shard is decided once per
        // plan, and the shard remembers its bucket, so that a pair costs no hashing unless a
        // replica is behind on some list.
        let undecided = -2, noReplica = -1
        var bucketOfShard = [Int](repeating: undecided, count: shardMap.shardReplicas.count)
        var bucketOfWorker: [WorkerID: Int] = [:]
        var buckets: [(worker: WorkerID, pairs: [ProbedList])] = []
        func bucket(of worker: WorkerID) -> Int {
            if let known = bucketOfWorker[worker] { return known }
            buckets.append((worker, []))
            bucketOfWorker[worker] = buckets.count - 1
            return buckets.count - 1
        }
        var unroutable: [ProbedList] = []
        for pair in pairs.sorted() {
            guard pair.list >= 0, Int(pair.list) < shardMap.nlist else {
                throw .listOutOfRange(list: pair.list, nlist: shardMap.nlist)
            }
            let shard = shardMap.shardOfList[Int(pair.list)]
            if bucketOfShard[shard] == undecided {
                let live = shardMap.shardReplicas[shard].filter { !unavailable.contains($0) }
                bucketOfShard[shard] = live.isEmpty ? noReplica : bucket(of: live[rotation.magnitudeModulo(live.count)])
            }
            var target = bucketOfShard[shard]
            // The shard's chosen replica may be behind on this list: another live one serves it.
            if target != noReplica, !replicas.isEmpty, !replicas.isServing(list: pair.list, worker: buckets[target].worker) {
                let serving = shardMap.shardReplicas[shard].filter {
                    !unavailable.contains($0) && replicas.isServing(list: pair.list, worker: $0)
                }
                target = serving.isEmpty ? noReplica : bucket(of: serving[rotation.magnitudeModulo(serving.count)])
            }
            if target == noReplica { unroutable.append(pair) } else { buckets[target].pairs.append(pair) }
        }
        // A bucket made for a shard whose pairs all went to other replicas stays empty.
        requests = buckets.filter { !$0.pairs.isEmpty }.sorted { $0.worker < $1.worker }.map { bucket in
            // Pairs are sorted by query, so the CSR comes out in query order.
            var queries: [Int] = []
            var offsets: [UInt32] = [0]
            var lists: [Int32] = []
            for pair in bucket.pairs {
                if queries.last != pair.query {
                    if !queries.isEmpty { offsets.append(UInt32(lists.count)) }
                    queries.append(pair.query)
                }
                lists.append(pair.list)
            }
            offsets.append(UInt32(lists.count))
            return ShardRequest(worker: bucket.worker, queries: queries, probeOffsets: offsets, probeListIDs: lists)
        }
        self.unroutable = unroutable
    }

    /// Every worker this plan sends to.
    public var workers: [WorkerID] { requests.map(\.worker) }
}

/// The coarse score of every probed (query, list) pair of a batch, found by pair, so that each
/// worker's request carries the scores of exactly the lists it is asked for (its scan then
/// takes them instead of recomputing ⟨q, c⟩ for every list).
public struct ProbeScores: Sendable {
    private let nprobe: Int
    /// Per query, its `nprobe` probed lists in ascending order (−1 padding first), and their
    /// scores in the same order.
    private let lists: [Int32]
    private let scores: [Float]

    /// `probes` and `scores` are `queryCount × nprobe`, as the coarse probe returns them.
    public init(probes: [Int32], scores: [Float], nprobe: Int) throws(ScatterError) {
        guard probes.count == scores.count, nprobe > 0 || probes.isEmpty, nprobe == 0 || probes.count % nprobe == 0 else {
            throw .shapeMismatch("\(scores.count) coarse scores for \(probes.count) probes of nprobe \(nprobe)")
        }
        self.nprobe = nprobe
        var lists = [Int32](repeating: -1, count: probes.count)
        var sorted = [Float](repeating: 0, count: probes.count)
        var order = [Int](repeating: 0, count: nprobe)
        for start in stride(from: 0, to: probes.count, by: max(1, nprobe)) {
            for slot in 0 ..< nprobe { order[slot] = start + slot }
            order.sort { probes[$0] < probes[$1] }
            for (slot, position) in order.enumerated() {
                lists[start + slot] = probes[position]
                sorted[start + slot] = scores[position]
            }
        }
        self.lists = lists
        self.scores = sorted
    }

    /// The scores aligned with `request.probeListIDs`.
    public func scores(for request: ShardRequest) throws(ScatterError) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(request.probeListIDs.count)
        for (row, query) in request.queries.enumerated() {
            let start = query * nprobe
            guard query >= 0, start + nprobe <= lists.count else {
                throw .shapeMismatch("query \(query) is outside the \(lists.count / max(1, nprobe)) queries scored")
            }
            for index in Int(request.probeOffsets[row]) ..< Int(request.probeOffsets[row + 1]) {
                let list = request.probeListIDs[index]
                var low = start, high = start + nprobe
                while low < high {
                    let middle = (low + high) / 2
                    if lists[middle] < list { low = middle + 1 } else { high = middle }
                }
                guard low < start + nprobe, lists[low] == list, list >= 0 else {
                    throw .shapeMismatch("list \(list) of query \(query) was not probed")
                }
                out.append(scores[low])
            }
        }
        return out
    }
}

extension Int {
    /// A non-negative remainder even for negative rotations.
    fileprivate func magnitudeModulo(_ divisor: Int) -> Int {
        let remainder = self % divisor
        return remainder < 0 ? remainder + divisor : remainder
    }
}

/// A search batch that cannot be planned or an answer that cannot be merged.
public enum ScatterError: Error, Equatable, CustomStringConvertible, Sendable {
    case shapeMismatch(String)
    case listOutOfRange(list: Int32, nlist: Int)
    case malformedAnswer(worker: WorkerID, String)

    public var description: String {
        switch self {
        case .shapeMismatch(let detail): "search batch shape mismatch: \(detail)"
        case .listOutOfRange(let list, let nlist): "probed list \(list) is outside the shard map's \(nlist) lists"
        case .malformedAnswer(let worker, let detail): "worker \(worker) sent a malformed answer: \(detail)"
        }
    }
}
