import Testing

@testable import QuiverIndex

/// The coarse probe and the merge's key set against plain references.
@Suite struct ProbeTests {
    /// Small integers: every distance is exact in float whatever the summation order, and many
    /// are equal, so the tie rule (the lower list first) is exercised.
    static func integerModel(metric: Metric, nlist: Int, dimension: Int) -> IVFModel {
        var generator = SeededGenerator(seed: 11)
        var values: [Float] = []
        for list in 0 ..< nlist {
            // The second half repeats the first: exact ties between two lists.
            if list >= nlist / 2 {
                values += values[(list - nlist / 2) * dimension ..< (list - nlist / 2 + 1) * dimension]
            } else {
                values += (0 ..< dimension).map { _ in Float(Int.random(in: -2 ... 2, using: &generator)) }
            }
        }
        return IVFModel(configuration: IVFConfiguration(dimension: dimension, metric: metric, nlist: nlist, subspaces: 4),
                        centroids: Matrix(rows: nlist, dimension: dimension, values: values), quantizer: nil)
    }

    @Test(arguments: [Metric.innerProduct, .l2])
    func probingTakesTheNearestListsTiesToTheLowerList(metric: Metric) {
        let nlist = 40, dimension = 16, count = 60
        let model = Self.integerModel(metric: metric, nlist: nlist, dimension: dimension)
        var generator = SeededGenerator(seed: 5)
        let queries = (0 ..< count * dimension).map { _ in Float(Int.random(in: -3 ... 3, using: &generator)) }
        for nprobe in [1, 7, 16, 39, 40, 64] {
            let probed = queries.withUnsafeBufferPointer { model.probeWithDistances($0.baseAddress!, count: count, nprobe: nprobe) }
            let kept = min(nprobe, nlist)
            #expect(probed.lists.count == count * kept)
            for row in 0 ..< count {
                let query = queries[row * dimension ..< (row + 1) * dimension]
                let ranked = (0 ..< nlist).map { list -> (Float, Int32) in
                    let centroid = model.centroids.values[list * dimension ..< (list + 1) * dimension]
                    let dot = zip(query, centroid).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                    return (metric == .l2 ? model.centroidNorms[list] - 2 * dot : -dot, Int32(list))
                }.sorted { $0 < $1 }
                let lists = Array(probed.lists[row * kept ..< (row + 1) * kept])
                #expect(lists == ranked.prefix(kept).map(\.1), "nprobe \(nprobe), query \(row)")
                let distances = probed.distances[row * kept ..< (row + 1) * kept]
                #expect(zip(distances, distances.dropFirst()).allSatisfy { $0 <= $1 })
            }
        }
    }

    @Test func probingQueriesWhoseScoresOverflowKeepsOnlyNumbers() {
        // ⟨q, c⟩ of such queries overflows to ±∞ and ∞ − ∞ is NaN: NaN lists are never probed.
        let nlist = 24, dimension = 16, count = 8
        let model = Self.integerModel(metric: .innerProduct, nlist: nlist, dimension: dimension)
        var generator = SeededGenerator(seed: 9)
        let queries = (0 ..< count * dimension).map { _ in Float.random(in: -1 ... 1, using: &generator) * 3e38 }
        let probed = queries.withUnsafeBufferPointer { model.probeWithDistances($0.baseAddress!, count: count, nprobe: 6) }
        for row in 0 ..< count {
            let lists = probed.lists[row * 6 ..< (row + 1) * 6].filter { $0 >= 0 }
            #expect(Set(lists).count == lists.count && lists.allSatisfy { $0 < nlist })
            #expect(probed.distances[row * 6 ..< (row + 1) * 6].allSatisfy { !$0.isNaN })
        }
    }

    @Test func keySetAgreesWithSet() {
        var generator = SeededGenerator(seed: 3)
        var keys = KeySet(capacity: 4)
        var reference = Set<UInt64>()
        for round in 0 ..< 4 {
            for _ in 0 ..< 3000 {
                // Narrow ranges make repeats; the extremes include the table's empty marker.
                let key: UInt64 = switch Int.random(in: 0 ..< 4, using: &generator) {
                case 0: UInt64.random(in: 0 ..< 500, using: &generator)
                case 1: UInt64.max - UInt64.random(in: 0 ..< 3, using: &generator)
                case 2: UInt64.random(in: 0 ..< 64, using: &generator) << 32
                default: UInt64.random(in: 0 ... .max, using: &generator)
                }
                #expect(keys.insert(key) == reference.insert(key).inserted, "round \(round), key \(key)")
            }
            #expect(keys.count == reference.count)
            keys.removeAll()
            reference.removeAll()
            #expect(keys.count == 0)
        }
    }
}
