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

    public init(queryCount: Int, k: Int, ids: [Int64], distances: [Float]) {
        precondition(ids.count == queryCount * k && distances.count == queryCount * k)
        self.queryCount = queryCount
        self.k = k
        self.ids = ids
        self.distances = distances
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
