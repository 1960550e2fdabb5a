import CQuiverKernels
import Testing

@Suite struct TopK {
    @Test func thresholdIsInfiniteUntilFullThenTiesGoByID() {
        let heap = Heap(capacity: 2, dedupe: false)
        #expect(heap.threshold == .infinity)
        #expect(heap.push(3, 1))
        #expect(heap.threshold == .infinity)
        #expect(heap.push(5, 2))
        #expect(heap.threshold == 5)
        #expect(!heap.push(5, 3), "a tie with the worst entry enters only with a smaller id")
        #expect(heap.push(5, 0), "a tie with a smaller id displaces the worst entry")
        #expect(heap.threshold == 5)
        #expect(heap.push(4, 4))
        #expect(heap.threshold == 4)
        #expect(heap.sorted() == [Entry(3, 1), Entry(4, 4)])
        // The kept set does not depend on the order of the offers.
        let forward = Heap(capacity: 3, dedupe: false), backward = Heap(capacity: 3, dedupe: false)
        let offers: [(Float, Int64)] = [(2, 9), (1, 5), (2, 3), (2, 7), (1, 8), (2, 1)]
        for (distance, id) in offers { forward.push(distance, id) }
        for (distance, id) in offers.reversed() { backward.push(distance, id) }
        #expect(forward.sorted() == [Entry(1, 5), Entry(1, 8), Entry(2, 1)])
        #expect(backward.sorted() == forward.sorted())
    }

    @Test func rejectsNaNAndZeroCapacity() {
        let heap = Heap(capacity: 3, dedupe: false)
        #expect(!heap.push(.nan, 1))
        #expect(heap.count == 0)
        let empty = Heap(capacity: 0, dedupe: true)
        #expect(!empty.push(-.infinity, 1))
        #expect(empty.count == 0)
    }

    @Test func dedupeKeepsTheSmallerDistance() {
        let heap = Heap(capacity: 3, dedupe: true)
        #expect(heap.push(5, 7))
        #expect(heap.push(3, 7))
        #expect(!heap.push(4, 7), "a worse distance for a held id changes nothing")
        #expect(heap.push(6, 8))
        #expect(heap.push(9, 9))
        #expect(heap.push(1, 9), "improving a held id works when the heap is full")
        #expect(heap.sorted() == [Entry(1, 9), Entry(3, 7), Entry(6, 8)])

        let plain = Heap(capacity: 3, dedupe: false)
        plain.push(5, 7)
        plain.push(3, 7)
        #expect(plain.sorted() == [Entry(3, 7), Entry(5, 7)])
    }

    @Test func sortsByDistanceThenId() {
        let heap = Heap(capacity: 6, dedupe: false)
        for (distance, id) in [(2, 9), (1, 5), (2, 3), (-0.5, 8), (1, 2), (2, 4)] as [(Float, Int64)] {
            heap.push(distance, id)
        }
        #expect(heap.sorted() == [Entry(-0.5, 8), Entry(1, 2), Entry(1, 5), Entry(2, 3), Entry(2, 4), Entry(2, 9)])
    }

    @Test(arguments: [false, true], [false, true])
    func keepsTheBestOfARandomStream(dedupe: Bool, reservoir: Bool) {
        var rng = TestRandom(seed: dedupe ? 11 : 10)
        let k = 16
        let heap = Heap(capacity: k, dedupe: dedupe, reservoir: reservoir)
        var best: [Int64: Float] = [:]
        var all: [Entry] = []
        // Distinct distances: which entry wins a tie is not part of this check.
        for distance in (0..<2000).map(Float.init).shuffled(using: &rng) {
            let id = Int64.random(in: 0..<200, using: &rng)
            heap.push(distance, id)
            all.append(Entry(distance, id))
            best[id] = min(best[id] ?? .infinity, distance)
        }
        let expected = dedupe
            ? best.map { Entry($0.value, $0.key) }.sorted { ($0.distance, $0.id) < ($1.distance, $1.id) }
            : all.sorted { ($0.distance, $0.id) < ($1.distance, $1.id) }
        #expect(heap.sorted() == Array(expected.prefix(k)))
    }

    /// The kept set of a dedupe heap computed the slow way: each id's best distance, the best
    /// `capacity` of those in (distance, tie key) order.
    func expectedDedupe(_ offers: [(Float, Int64)], capacity: Int, key: (Int64) -> Int64 = { $0 }) -> [Entry] {
        var best: [Int64: Float] = [:]
        for (distance, id) in offers { best[id] = min(best[id] ?? .infinity, distance) }
        return best.map { Entry($0.value, $0.key) }
            .sorted { ($0.distance, key($0.id)) < ($1.distance, key($1.id)) }
            .prefix(capacity).map { $0 }
    }

    @Test(arguments: [1, 2, 7, 40, 1000, 5000], [false, true])
    func dedupeIndexMatchesTheSlowDefinitionAtAnyCapacity(capacity: Int, reservoir: Bool) {
        var rng = TestRandom(seed: UInt64(capacity))
        let heap = Heap(capacity: capacity, dedupe: true, reservoir: reservoir)
        // Few distinct distances and ids drawn from a range near the capacity: many repeats,
        // many ties, evictions of entries whose index runs wrap around.
        for round in 0..<3 {
            let offers = (0..<(capacity * 6 + 50)).map { _ in
                (Float(Int.random(in: 0..<(capacity + 20), using: &rng)), Int64.random(in: 0..<Int64(capacity * 2 + 5), using: &rng))
            }
            for (distance, id) in offers { heap.push(distance, id) }
            #expect(heap.sorted() == expectedDedupe(offers, capacity: capacity), "capacity=\(capacity) round=\(round)")
            // A cleared heap starts afresh: the index forgets every id.
            heap.clear()
            #expect(heap.count == 0)
        }
    }

    @Test(arguments: [false, true])
    func tieKeysRankEqualDistancesByExternalID(reservoir: Bool) {
        // Rows 0..4 carry external ids in reverse order: ties must keep the smallest external ids.
        let external: [Int64] = [50, 40, 30, 20, 10]
        external.withUnsafeBufferPointer { keys in
            for dedupe in [false, true] {
                let heap = Heap(capacity: 2, dedupe: dedupe, tieKeys: keys.baseAddress, reservoir: reservoir)
                for row in 0..<5 { heap.push(1, Int64(row)) }
                #expect(heap.sorted() == [Entry(1, 4), Entry(1, 3)], "dedupe=\(dedupe)")
                heap.clear()
                for row in (0..<5).reversed() { heap.push(1, Int64(row)) }
                #expect(heap.sorted() == [Entry(1, 4), Entry(1, 3)], "dedupe=\(dedupe), reversed offers")
            }
        }
    }

    /// A reservoir keeps exactly what the heap keeps, whatever the offers: ties everywhere,
    /// repeated ids with and without dedupe, tie keys, both zeros, infinities, reuse after clear.
    @Test func aReservoirKeepsWhatTheHeapKeeps() {
        var rng = TestRandom(seed: 77)
        let external: [Int64] = (0..<600).map { _ in Int64.random(in: 0..<1_000_000, using: &rng) }
        external.withUnsafeBufferPointer { keys in
            for trial in 0..<300 {
                let capacity = [1, 2, 3, 5, 16, 64, 100, 157][trial % 8]
                let dedupe = trial % 3 != 0
                let tieKeys = trial % 4 == 0 ? keys.baseAddress : nil
                let heap = Heap(capacity: capacity, dedupe: dedupe, tieKeys: tieKeys)
                let reservoir = Heap(capacity: capacity, dedupe: dedupe, tieKeys: tieKeys, reservoir: true)
                for round in 0..<2 {
                    let distinct = Int.random(in: 1...50, using: &rng)
                    let offers = (0..<Int.random(in: 0...(capacity * 12 + 40), using: &rng)).map { _ -> (Float, Int64) in
                        var distance = Float(Int.random(in: 0..<distinct, using: &rng) - distinct / 3) / 4
                        if Int.random(in: 0..<50, using: &rng) == 0 { distance = .infinity }
                        // ±0 of one id rank equal; without dedupe either may stay, so only with it.
                        if dedupe && distance == 0 && Bool.random(using: &rng) { distance = -0.0 }
                        return (distance, Int64.random(in: 0..<Int64(min(600, capacity * 3 + 5)), using: &rng))
                    }
                    for (distance, id) in offers {
                        heap.push(distance, id)
                        reservoir.push(distance, id)
                        #expect(reservoir.threshold >= heap.threshold, "a reservoir's cut is never tighter than the heap's")
                    }
                    #expect(reservoir.sorted() == heap.sorted(), "trial \(trial) round \(round): capacity \(capacity), dedupe \(dedupe)")
                    heap.clear()
                    reservoir.clear()
                    #expect(reservoir.count == 0 && reservoir.threshold == .infinity)
                }
            }
        }
    }

    @Test func smallestKIsTheSetAHeapOfKKeepsInIndexOrderOnEveryISA() {
        var rng = TestRandom(seed: 50)
        for trial in 0..<600 {
            let n = Int.random(in: 1...700, using: &rng)
            let k = Int.random(in: 1...80, using: &rng)
            // Few distinct values (ties everywhere), both signs, both zeros, now and then infinities.
            let distinct = Int.random(in: 1...40, using: &rng)
            let values: [Float] = (0..<n).map { _ in
                switch Int.random(in: 0..<50, using: &rng) {
                case 0: return -0.0
                case 1: return trial % 3 == 0 ? .infinity : 0
                case 2: return trial % 5 == 0 ? -.infinity : 0
                default: return (Float(Int.random(in: 0..<distinct, using: &rng)) - Float(distinct) / 2) * 0.5
                }
            }
            let expected = values.indices.sorted { (values[$0], $0) < (values[$1], $1) }.prefix(k).sorted().map(Int32.init)
            for isa in [QUIVER_ISA_SCALAR] + simdISAs {
                var indices = [Int32](repeating: -1, count: k)
                var scratch = [Float](repeating: 0, count: n + 16)
                let count = quiver_smallest_isa(isa, values, n, k, &indices, &scratch)
                #expect(count == min(n, k))
                #expect(Array(indices.prefix(count)) == expected, "isa=\(isa.rawValue) n=\(n) k=\(k) distinct=\(distinct)")
            }
        }
    }

    @Test func smallestKOfDistinctRandomFloatsMatchesOnEveryISA() {
        var rng = TestRandom(seed: 51)
        for _ in 0..<200 {
            let n = Int.random(in: 1...2000, using: &rng)
            let k = Int.random(in: 1...100, using: &rng)
            let scale = Float(sign: .plus, exponent: Int.random(in: -20...20, using: &rng), significand: 1)
            let values = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) * scale }
            let expected = values.indices.sorted { (values[$0], $0) < (values[$1], $1) }.prefix(k).sorted().map(Int32.init)
            for isa in [QUIVER_ISA_SCALAR] + simdISAs {
                var indices = [Int32](repeating: -1, count: k)
                var scratch = [Float](repeating: 0, count: n + 16)
                let count = quiver_smallest_isa(isa, values, n, k, &indices, &scratch)
                #expect(Array(indices.prefix(count)) == expected, "isa=\(isa.rawValue) n=\(n) k=\(k)")
            }
        }
    }
}
