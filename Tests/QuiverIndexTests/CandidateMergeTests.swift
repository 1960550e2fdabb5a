import Testing
@testable import QuiverIndex

/// `SearchResults.mergeCandidates` against its definition, NaNs included: what one index would
/// re-rank, whatever the parts' order, ties and duplicates.
@Suite struct CandidateMergeTests {
    /// The definition, written as sorts: the pool by (estimate, id), its first `reorderK`
    /// distinct ids, those by (exact, id), the first `k`. NaNs count as the index's heaps count
    /// them (never taken): a NaN estimate is no candidate; a NaN exact distance takes its place
    /// among the `reorderK` but is not returned.
    static func reference(_ parts: [SearchResults], reorderK: Int, k: Int) -> SearchResults {
        var merged = SearchResults(queryCount: parts[0].queryCount, k: k)
        for query in 0 ..< parts[0].queryCount {
            var pool: [(estimate: Float, exact: Float, id: Int64)] = []
            for part in parts {
                for i in query * part.k ..< (query + 1) * part.k where part.ids[i] >= 0 && !part.distances[i].isNaN {
                    pool.append((part.distances[i], part.exactDistances[i], part.ids[i]))
                }
            }
            pool.sort { $0.estimate != $1.estimate ? $0.estimate < $1.estimate : $0.id < $1.id }
            var seen = Set<Int64>()
            var chosen = pool.filter { seen.insert($0.id).inserted }.prefix(reorderK).filter { !$0.exact.isNaN }
            chosen.sort { $0.exact != $1.exact ? $0.exact < $1.exact : $0.id < $1.id }
            for (slot, candidate) in chosen.prefix(k).enumerated() {
                merged.ids[query * k + slot] = candidate.id
                merged.distances[query * k + slot] = candidate.exact
            }
        }
        return merged
    }

    /// Parts as workers send them (each query's candidates distinct and sorted by (estimate, id),
    /// padded with −1), or shuffled; ids shared across parts (spilled vectors found twice, with
    /// different estimates and one exact distance), ties in both distances, and optionally NaNs.
    static func parts(seed: UInt64, sorted: Bool, nan: Bool) -> (parts: [SearchResults], reorderK: Int, k: Int) {
        var random = SeededGenerator(seed: seed)
        let queries = Int.random(in: 1 ... 4, using: &random)
        let idRange = Int64.random(in: 5 ... 80, using: &random)
        let exact = (0 ..< idRange).map { _ in Float(Int.random(in: 0 ..< 12, using: &random)) / 4 }
        var parts: [SearchResults] = []
        for _ in 0 ..< Int.random(in: 1 ... 5, using: &random) {
            let slots = Int.random(in: 1 ... 40, using: &random)
            var ids = [Int64](repeating: -1, count: queries * slots)
            var estimates = [Float](repeating: .infinity, count: queries * slots)
            var exacts = [Float](repeating: .infinity, count: queries * slots)
            for query in 0 ..< queries {
                let held = Int.random(in: 0 ... min(slots, Int(idRange)), using: &random)
                var row = Array((0 ..< idRange).shuffled(using: &random).prefix(held)).map { id in
                    (estimate: Float(Int.random(in: 0 ..< 16, using: &random)) / 8, id: id)
                }
                if sorted {
                    row.sort { $0.estimate != $1.estimate ? $0.estimate < $1.estimate : $0.id < $1.id }
                }
                for (offset, entry) in row.enumerated() {
                    ids[query * slots + offset] = entry.id
                    estimates[query * slots + offset] = entry.estimate
                    exacts[query * slots + offset] = exact[Int(entry.id)]
                }
                if nan, held > 0, Bool.random(using: &random) {
                    let slot = query * slots + Int.random(in: 0 ..< held, using: &random)
                    if Bool.random(using: &random) { estimates[slot] = .nan } else { exacts[slot] = .nan }
                }
            }
            parts.append(SearchResults(queryCount: queries, k: slots, ids: ids, distances: estimates, exactDistances: exacts))
        }
        return (parts, Int.random(in: 1 ... 60, using: &random), Int.random(in: 1 ... 20, using: &random))
    }

    @Test(arguments: [(true, false), (false, false), (true, true), (false, true)])
    func mergeMatchesItsDefinition(sorted: Bool, nan: Bool) {
        for seed in 0 ..< UInt64(400) {
            let (parts, reorderK, k) = Self.parts(seed: seed &* 7919 &+ (sorted ? 1 : 0) &+ (nan ? 2 : 0), sorted: sorted, nan: nan)
            let merged = SearchResults.mergeCandidates(parts, reorderK: reorderK, k: k)
            let expected = Self.reference(parts, reorderK: reorderK, k: k)
            #expect(merged.ids == expected.ids, "seed \(seed), reorderK \(reorderK), k \(k)")
            // NaN != NaN: compare the bits.
            #expect(merged.distances.map(\.bitPattern) == expected.distances.map(\.bitPattern), "seed \(seed)")
        }
    }
}
