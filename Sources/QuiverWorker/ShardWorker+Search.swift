import CoreMetrics
import GRPCCore
import QuiverIndex
import QuiverCluster
import QuiverProtocol

extension ShardWorker {
    /// Queries scanned between two cancellation checks: large enough to keep every thread busy,
    /// small enough that a cancelled or timed-out search stops within milliseconds.
    static func searchChunk(threads: Int) -> Int { max(64, threads * 16) }

    /// Scans, for each query, the requested lists this worker owns and returns its local top-k.
    /// Lists it does not own are reported as skipped so the coordinator can retry them elsewhere.
    /// `isCancelled` is polled between chunks of queries; a cancelled search stops scanning.
    public func searchLists(_ request: Quiver_V1_SearchListsRequest,
                            isCancelled: () -> Bool = { false }) throws(RPCError) -> Quiver_V1_SearchListsResponse {
        let collection = try collection(request.collection)
        try checkModelVersion(request.modelVersion, of: collection, rpc: "SearchLists")
        let model = collection.model
        let d = model.dimension
        let k = Int(request.k)
        let reorderK = Int(request.reorderK)
        guard k > 0, k <= SearchSettings.maxK else {
            throw .invalidArgument("SearchLists: k must be between 1 and \(SearchSettings.maxK), got \(k)")
        }
        guard reorderK <= SearchSettings.maxReorderK else {
            throw .invalidArgument("SearchLists: reorder_k must be at most \(SearchSettings.maxReorderK), got \(reorderK)")
        }
        let count = Int(request.queries.rows)
        guard Int(request.queries.dimension) == d else {
            throw .invalidArgument("SearchLists: queries have dimension \(request.queries.dimension), collection \"\(collection.name)\" has \(d)")
        }
        // The same bound the coordinator applies before it asks: the answer must fit one message.
        guard count * max(k, reorderK) <= SearchSettings.maxAnswerSlots(maxMessageBytes: options.maxMessageBytes) else {
            throw .resourceExhausted("SearchLists: \(count) queries × \(max(k, reorderK)) candidates would not fit the "
                + "\(options.maxMessageBytes >> 20) MiB message limit; split the batch")
        }
        let queries = try unpack(request.queries.data, as: Float.self, count: count * d, field: "queries.data")
        if let bad = Kernels.firstNonFinite(queries) {
            throw .invalidArgument("SearchLists: query \(bad / d) has non-finite value \(queries[bad]) at component \(bad % d)")
        }
        let offsets = try unpack(request.probeOffsets, as: UInt32.self, count: count + 1, field: "probe_offsets")
        let probed = try unpack(request.probeListIds, as: Int32.self, field: "probe_list_ids")
        guard offsets[0] == 0, Int(offsets[count]) == probed.count else {
            throw .invalidArgument("SearchLists: probe_offsets must start at 0 and end at the \(probed.count) probe_list_ids; "
                + "got \(offsets[0]) and \(offsets[count])")
        }
        let coarseScores = request.probeCoarseScores.isEmpty
            ? nil : try unpack(request.probeCoarseScores, as: Float.self, count: probed.count, field: "probe_coarse_scores")
        // Every offset is checked before any is used to index probe_list_ids.
        for query in 0 ..< count where offsets[query] > offsets[query + 1] {
            throw .invalidArgument("SearchLists: probe_offsets decrease at query \(query) (\(offsets[query]) > \(offsets[query + 1]))")
        }
        var seen = [Int](repeating: -1, count: model.nlist)
        for query in 0 ..< count {
            for position in Int(offsets[query]) ..< Int(offsets[query + 1]) {
                let list = probed[position]
                guard list >= 0, Int(list) < model.nlist else {
                    throw .invalidArgument("SearchLists: query \(query) probes list \(list), which is not a list of this model (nlist \(model.nlist))")
                }
                guard seen[Int(list)] != query else {
                    throw .invalidArgument("SearchLists: query \(query) probes list \(list) twice")
                }
                seen[Int(list)] = query
            }
        }

        let plan = collection.read { index, ownership in
            ScanPlan(offsets: offsets, probed: probed, coarseScores: coarseScores, ownership: ownership,
                     listSizes: index.lists.map(\.count), metric: model.configuration.metric)
        }
        let metric = model.configuration.metric
        let parameters = SearchParameters(k: k, nprobe: max(1, plan.nprobe), reorderK: reorderK)
        // With re-ranking the answer is the candidate list with exact scores (see the proto).
        let reranking = collection.read { index, _ in index.reranks(parameters) }
        let slots = reranking ? max(k, reorderK) : k
        var ids = [Int64](repeating: -1, count: count * slots)
        var scores = [Float](repeating: metric.score(fromDistance: .infinity), count: count * slots)
        var exactScores = reranking ? scores : []
        if plan.nprobe > 0 {
            let chunk = Self.searchChunk(threads: options.threads)
            var start = 0
            while start < count {
                if isCancelled() {
                    throw RPCError(code: .cancelled, message: "SearchLists cancelled after \(start) of \(count) queries")
                }
                let end = min(count, start + chunk)
                let probes = Array(plan.probes[start * plan.nprobe ..< end * plan.nprobe])
                let coarse = plan.coarseDistances.map { Array($0[start * plan.nprobe ..< end * plan.nprobe]) }
                let results = queries.withUnsafeBufferPointer { q in
                    collection.read { index, _ in
                        index.candidates(prepared: q.baseAddress! + start * d, count: end - start, probes: probes, nprobe: plan.nprobe,
                                         parameters: parameters, threads: options.threads, coarseDistances: coarse)
                    }
                }
                for slot in 0 ..< results.ids.count where results.ids[slot] >= 0 {
                    ids[start * slots + slot] = results.ids[slot]
                    scores[start * slots + slot] = metric.score(fromDistance: results.distances[slot])
                    if reranking { exactScores[start * slots + slot] = metric.score(fromDistance: results.exactDistances[slot]) }
                }
                start = end
            }
        }
        collection.queriesServed.add(UInt64(count), ordering: .relaxed)
        let dimensions = [("collection", collection.name)]
        Counter(label: QuiverMetrics.listsScanned, dimensions: dimensions).increment(by: Int64(plan.listsScanned.reduce(0) { $0 + Int($1) }))
        Counter(label: QuiverMetrics.codesScanned, dimensions: dimensions).increment(by: Int64(plan.codesScanned))
        if reranking {
            Counter(label: QuiverMetrics.candidatesReranked, dimensions: dimensions).increment(by: Int64(ids.count { $0 >= 0 }))
        }

        var response = Quiver_V1_SearchListsResponse()
        response.results = Quiver_V1_TopK(queryCount: count, k: slots, ids: ids, scores: scores)
        response.exactScores = WireArrays.pack(exactScores)
        response.listsScanned = WireArrays.pack(plan.listsScanned)
        if !plan.skippedIDs.isEmpty {
            response.skippedOffsets = WireArrays.pack(plan.skippedOffsets)
            response.skippedListIds = WireArrays.pack(plan.skippedIDs)
        }
        response.codesScanned = plan.codesScanned
        return response
    }
}

/// The per-query lists to scan on this worker, laid out as `IVFIndex.search` takes them
/// (`count × nprobe`, padded with −1), and the requested lists left out because they are not owned.
struct ScanPlan {
    var nprobe = 0
    var probes: [Int32] = []
    /// Internal coarse distances aligned with `probes` (−⟨q, c⟩), when the coordinator sent them
    /// for an inner-product metric; the scan then skips recomputing them.
    var coarseDistances: [Float]?
    var listsScanned: [UInt32]
    var skippedOffsets: [UInt32] = [0]
    var skippedIDs: [Int32] = []
    var codesScanned: UInt64 = 0

    init(offsets: [UInt32], probed: [Int32], coarseScores: [Float]?, ownership: ListOwnership, listSizes: [Int], metric: Metric) {
        let count = offsets.count - 1
        listsScanned = [UInt32](repeating: 0, count: count)
        for query in 0 ..< count {
            for position in Int(offsets[query]) ..< Int(offsets[query + 1]) where ownership.owns(probed[position]) {
                listsScanned[query] += 1
            }
            nprobe = max(nprobe, Int(listsScanned[query]))
        }
        probes = [Int32](repeating: -1, count: count * nprobe)
        // The scan only takes coarse terms for inner product (L2 builds a table per list).
        let useCoarse = coarseScores != nil && metric.usesInnerProduct
        var distances = useCoarse ? [Float](repeating: 0, count: count * nprobe) : []
        for query in 0 ..< count {
            var slot = query * nprobe
            for position in Int(offsets[query]) ..< Int(offsets[query + 1]) {
                let list = probed[position]
                if ownership.owns(list) {
                    probes[slot] = list
                    if useCoarse { distances[slot] = -coarseScores![position] }
                    codesScanned += UInt64(listSizes[Int(list)])
                    slot += 1
                } else {
                    skippedIDs.append(list)
                }
            }
            skippedOffsets.append(UInt32(skippedIDs.count))
        }
        coarseDistances = useCoarse ? distances : nil
    }
}
