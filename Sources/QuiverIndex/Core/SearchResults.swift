/// Per-query search settings.
public struct SearchParameters: Sendable, Equatable {
    public var k: Int
    /// Lists visited per query.
    public var nprobe: Int
    /// Candidates re-scored exactly with raw vectors (0: no re-ranking).
    public var reorderK: Int

    public init(k: Int = 10, nprobe: Int = 16, reorderK: Int = 0) {
        self.k = k
        self.nprobe = nprobe
        self.reorderK = reorderK
    }
}

/// The k nearest neighbours of a batch of queries: `queryCount × k` ids and distances, nearest
/// first; missing entries (fewer than k candidates) have id −1 and distance +∞.
public struct SearchResults: Sendable, Equatable {
    public let queryCount: Int
    public let k: Int
    public var ids: [Int64]
    /// Internal distances (lower is better); `Metric.score(fromDistance:)` gives user scores.
    public var distances: [Float]
    /// Re-ranking candidates only (from `IVFIndex.candidates`): the exact distance of each slot,
    /// while `distances` holds the estimated (PQ) distance the candidates were chosen by.
    /// Empty for final results.
    public var exactDistances: [Float]

    public init(queryCount: Int, k: Int, ids: [Int64], distances: [Float], exactDistances: [Float] = []) {
        precondition(ids.count == queryCount * k && distances.count == queryCount * k)
        precondition(exactDistances.isEmpty || exactDistances.count == queryCount * k)
        self.queryCount = queryCount
        self.k = k
        self.ids = ids
        self.distances = distances
        self.exactDistances = exactDistances
    }

    public init(queryCount: Int, k: Int) {
        self.init(queryCount: queryCount, k: k,
                  ids: [Int64](repeating: -1, count: queryCount * k),
                  distances: [Float](repeating: .infinity, count: queryCount * k))
    }

    public func ids(ofQuery query: Int) -> ArraySlice<Int64> { ids[query * k ..< (query + 1) * k] }
    public func distances(ofQuery query: Int) -> ArraySlice<Float> { distances[query * k ..< (query + 1) * k] }

    /// Merges partial results for the same queries (one per shard) into the global top-k.
    /// An id reported by several parts (a spilled vector) counts once, with its best distance.
    public static func merge(_ parts: [SearchResults], k: Int) -> SearchResults {
        guard let first = parts.first else { return SearchResults(queryCount: 0, k: k) }
        var merged = SearchResults(queryCount: first.queryCount, k: k)
        var heap = TopK(capacity: k, dedupe: true)
        merged.ids.withUnsafeMutableBufferPointer { outIds in
            merged.distances.withUnsafeMutableBufferPointer { outDistances in
                for query in 0 ..< first.queryCount {
                    for part in parts {
                        precondition(part.queryCount == first.queryCount, "merging results of different batches")
                        for i in query * part.k ..< (query + 1) * part.k where part.ids[i] >= 0 {
                            heap.push(distance: part.distances[i], id: part.ids[i])
                        }
                    }
                    heap.drainSorted(into: outDistances.baseAddress! + query * k, outIds.baseAddress! + query * k, slots: k)
                }
            }
        }
        return merged
    }

    /// Merges re-ranking candidates of the same queries from several shards exactly as one index
    /// holding all the lists would re-rank: the best `reorderK` candidates by estimated distance
    /// (an id found in several lists counts once, with its best estimate), then the best `k` of
    /// those by exact distance. So a sharded search returns what the single index returns.
    /// A NaN counts as the index's heaps count it, which never take one: a candidate whose
    /// estimate is NaN is not a candidate, and one whose exact distance is NaN takes its place
    /// among the `reorderK` but is never returned. (Without that, the sorts below would have no
    /// strict order, and would place such candidates anywhere.)
    public static func mergeCandidates(_ parts: [SearchResults], reorderK: Int, k: Int) -> SearchResults {
        guard let first = parts.first else { return SearchResults(queryCount: 0, k: k) }
        var merged = SearchResults(queryCount: first.queryCount, k: k)
        var pool: [(estimate: Float, exact: Float, id: Int64)] = []
        var chosen: [(estimate: Float, exact: Float, id: Int64)] = []
        var seen = KeySet(capacity: parts.reduce(0) { $0 + $1.k })
        for query in 0 ..< first.queryCount {
            pool.removeAll(keepingCapacity: true)
            for part in parts {
                precondition(part.queryCount == first.queryCount && part.exactDistances.count == part.ids.count,
                             "merging candidates of different batches, or final results")
                for i in query * part.k ..< (query + 1) * part.k where part.ids[i] >= 0 && !part.distances[i].isNaN {
                    pool.append((part.distances[i], part.exactDistances[i], part.ids[i]))
                }
            }
            seen.removeAll()
            chosen.removeAll(keepingCapacity: true)
            // Few enough candidates, each id once (one worker answered): all of them are chosen,
            // in any order, so the sort by estimate is not needed.
            if pool.count <= reorderK, pool.allSatisfy({ seen.insert(UInt64(bitPattern: $0.id)) }) {
                chosen = pool
            } else {
                // Both orders are written out rather than as tuple `<` (the same order): that is
                // generic, and unspecialised (debug builds) looks up tuple metadata per comparison.
                pool.sort { $0.estimate != $1.estimate ? $0.estimate < $1.estimate : $0.id < $1.id }
                seen.removeAll()
                for candidate in pool where chosen.count < reorderK && seen.insert(UInt64(bitPattern: candidate.id)) {
                    chosen.append(candidate)
                }
            }
            chosen.removeAll { $0.exact.isNaN }
            chosen.sort { $0.exact != $1.exact ? $0.exact < $1.exact : $0.id < $1.id }
            for (slot, candidate) in chosen.prefix(k).enumerated() {
                merged.ids[query * k + slot] = candidate.id
                merged.distances[query * k + slot] = candidate.exact
            }
        }
        return merged
    }

    /// recall@k against ground truth rows (`truth` holds `truthColumns` ids per query).
    public func recall(against truth: [Int64], truthColumns: Int, at cutoff: Int? = nil) -> Double {
        let cutoff = min(cutoff ?? k, k, truthColumns)
        guard queryCount > 0, cutoff > 0 else { return 0 }
        var hits = 0
        for query in 0 ..< queryCount {
            let expected = Set(truth[query * truthColumns ..< query * truthColumns + cutoff])
            for id in ids[query * k ..< query * k + cutoff] where expected.contains(id) { hits += 1 }
        }
        return Double(hits) / Double(queryCount * cutoff)
    }
}
