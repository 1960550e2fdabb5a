import Testing
@testable import QuiverIndex

@Suite struct IVFIndexTests {
    static let data = SyntheticData(count: 6000, queries: 100, dimension: 32, clusters: 40, spread: 0.5, normalize: true, seed: 21)

    func build(_ configuration: IVFConfiguration, threads: Int = 2) throws -> IVFIndex {
        let model = try IVFModel.train(sample: Self.data.base, configuration: configuration, threads: threads)
        var index = IVFIndex(model: model)
        try index.add(Self.data.base, threads: threads)
        return index
    }

    func recall(_ index: IVFIndex, _ parameters: SearchParameters, metric: Metric = .innerProduct) throws -> Double {
        let truth = try Self.data.groundTruth(metric: metric, k: parameters.k)
        let results = try index.search(Self.data.queries, parameters: parameters, threads: 2)
        return results.recall(against: truth, truthColumns: parameters.k)
    }

    @Test func fastScanWithRerankingReachesHighRecall() throws {
        let index = try build(IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 40, anisotropicThreshold: 0.2))
        #expect(index.count == 6000)
        #expect(index.entryCount == 6000)
        let coarse = try recall(index, SearchParameters(k: 10, nprobe: 8, reorderK: 0))
        let reranked = try recall(index, SearchParameters(k: 10, nprobe: 8, reorderK: 50))
        #expect(coarse > 0.35)
        #expect(reranked > 0.9)
        #expect(reranked >= coarse)
    }

    @Test func everyEncodingFindsExactNeighboursWhenProbingEverything() throws {
        for encoding in ListEncoding.allCases {
            let index = try build(IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 16, encoding: encoding))
            let value = try recall(index, SearchParameters(k: 10, nprobe: 16, reorderK: encoding == .flat ? 0 : 100))
            #expect(value > (encoding == .flat ? 0.999 : 0.97), "\(encoding)")
        }
    }

    @Test func l2AndCosineMetrics() throws {
        for metric in [Metric.l2, .cosine] {
            let index = try build(IVFConfiguration(dimension: 32, metric: metric, nlist: 20))
            let value = try recall(index, SearchParameters(k: 10, nprobe: 20, reorderK: 100), metric: metric)
            #expect(value > 0.97, "\(metric)")
            let noRerank = try recall(index, SearchParameters(k: 10, nprobe: 20, reorderK: 0), metric: metric)
            #expect(noRerank > 0.3, "\(metric)")
        }
    }

    @Test func float16RawVectorsRerankAlmostAsWellAsFloat32() throws {
        let index = try build(IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 20, rawVectors: .float16))
        #expect(index.rawVectors.memoryBytes == 6000 * 32 * 2)
        #expect(try recall(index, SearchParameters(k: 10, nprobe: 20, reorderK: 100)) > 0.97)
    }

    @Test func spillingStoresASecondDistinctListAndDeduplicatesResults() throws {
        let spilled = try build(IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 40, spillLambda: 1))
        #expect(spilled.entryCount == 2 * 6000)
        var prepared = Self.data.base
        spilled.model.prepare(&prepared)
        let assignment = spilled.model.assign(prepared, threads: 2)
        for (first, second) in zip(assignment.primary, assignment.spill) {
            #expect(second >= 0 && second != first)
        }
        let results = try spilled.search(Self.data.queries, parameters: SearchParameters(k: 10, nprobe: 6, reorderK: 0), threads: 2)
        for query in 0 ..< results.queryCount {
            let ids = results.ids(ofQuery: query).filter { $0 >= 0 }
            #expect(Set(ids).count == ids.count)
        }
        let plain = try build(IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 40))
        let parameters = SearchParameters(k: 10, nprobe: 2, reorderK: 50)
        #expect(try recall(spilled, parameters) >= recall(plain, parameters))
    }

    @Test func spillListsMinimiseTheSOARLoss() throws {
        // More lists than the 64 candidates of the path without the Gram matrix.
        let configuration = IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 100, spillLambda: 1)
        let model = try IVFModel.train(sample: Self.data.base, configuration: configuration, threads: 2)
        var prepared = Self.data.base
        model.prepare(&prepared)
        let assignment = model.assign(prepared, threads: 2)
        #expect(assignment == model.assign(prepared, threads: 1))
        // With the centroids' Gram matrix every list is a candidate; without it (more lists than
        // it is kept for) the 64 nearest are, each with a dot product for ⟨c, c₁⟩. The best
        // loss nearly always lies among the nearest, so the choices nearly always agree.
        let direct = prepared.values.withUnsafeBufferPointer {
            model.assign($0.baseAddress!, count: prepared.rows, threads: 1, useGram: false)
        }
        #expect(direct.primary == assignment.primary)
        let agreeing = zip(direct.spill, assignment.spill).filter { $0 == $1 }.count
        #expect(agreeing * 100 >= prepared.rows * 99, "\(agreeing) of \(prepared.rows) spill lists agree")
        let d = prepared.dimension
        for (assignment, step, everyList) in [(assignment, 7, true), (direct, 13, false)] {
        for row in stride(from: 0, to: prepared.rows, by: step) {
            let x = (0 ..< d).map { Double(prepared.values[row * d + $0]) }
            func centroid(_ c: Int) -> [Double] { (0 ..< d).map { Double(model.centroids.values[c * d + $0]) } }
            func squaredDistance(_ c: Int) -> Double { zip(x, centroid(c)).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
            let distances = (0 ..< model.nlist).map(squaredDistance)
            let nearest = distances.indices.sorted { (distances[$0], $0) < (distances[$1], $1) }.prefix(64)
            let primary = Int(assignment.primary[row])
            #expect(distances[primary] <= distances[nearest.first!] + 1e-4, "row \(row): primary \(primary) is not the nearest list")
            let r1 = zip(x, centroid(primary)).map { $0 - $1 }
            let r1Norm = r1.reduce(0) { $0 + $1 * $1 }
            func loss(_ c: Int) -> Double {
                let projection = zip(zip(x, centroid(c)), r1).reduce(0) { $0 + ($1.0.0 - $1.0.1) * $1.1 }
                return distances[c] + projection * projection / r1Norm
            }
            let spill = Int(assignment.spill[row])
            let candidates = everyList ? Array(0 ..< model.nlist) : Array(nearest)
            let bestLoss = candidates.filter { $0 != primary }.map(loss).min()!
            #expect(spill != primary && (everyList || distances[spill] <= distances[nearest.last!] + 1e-4),
                    "row \(row): spill \(spill) is not among the nearest lists")
            #expect(loss(spill) <= bestLoss + 1e-3 * max(1, bestLoss), "row \(row): spill \(spill) loss \(loss(spill)) > \(bestLoss)")
        }
        }
    }

    @Test func searchResultsAreDeterministicAcrossThreadCounts() throws {
        let index = try build(IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 20, spillLambda: 1))
        let parameters = SearchParameters(k: 5, nprobe: 4, reorderK: 20)
        let one = try index.search(Self.data.queries, parameters: parameters, threads: 1)
        let two = try index.search(Self.data.queries, parameters: parameters, threads: 2)
        #expect(one == two)
    }

    @Test func workerSubsetsMergeToTheWholeIndex() throws {
        // Two "shards" holding disjoint halves of the lists, merged, equal the single index.
        let configuration = IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 20)
        let model = try IVFModel.train(sample: Self.data.base, configuration: configuration, threads: 2)
        var whole = IVFIndex(model: model)
        try whole.add(Self.data.base)
        var prepared = Self.data.base
        model.prepare(&prepared)
        let assignment = model.assign(prepared)
        var shards = [IVFIndex(model: model), IVFIndex(model: model)]
        for shard in 0 ..< 2 {
            let rows = (0 ..< prepared.rows).filter { Int(assignment.primary[$0]) % 2 == shard }
            try shards[shard].add(prepared: prepared.gathering(rows), ids: rows.map(Int64.init),
                                  assignment: .init(primary: rows.map { assignment.primary[$0] }, spill: rows.map { _ in -1 }))
        }
        let parameters = SearchParameters(k: 10, nprobe: 6, reorderK: 30)
        var queries = Self.data.queries
        model.prepare(&queries)
        let probes = queries.values.withUnsafeBufferPointer { model.probe($0.baseAddress!, count: queries.rows, nprobe: 6) }
        let parts = shards.enumerated().map { shard, index in
            let owned = probes.map { Int($0) % 2 == shard ? $0 : -1 }
            return queries.values.withUnsafeBufferPointer {
                index.candidates(prepared: $0.baseAddress!, count: queries.rows, probes: owned, nprobe: 6, parameters: parameters)
            }
        }
        #expect(parts.allSatisfy { $0.k == 30 && $0.exactDistances.count == $0.ids.count })
        let merged = SearchResults.mergeCandidates(parts, reorderK: 30, k: 10)
        let direct = try whole.search(Self.data.queries, parameters: parameters)
        #expect(merged.ids == direct.ids)
        #expect(merged.distances == direct.distances)
        // Without re-ranking the shards' top-k merge directly.
        let plain = SearchParameters(k: 10, nprobe: 6, reorderK: 0)
        let plainParts = shards.enumerated().map { shard, index in
            queries.values.withUnsafeBufferPointer {
                index.candidates(prepared: $0.baseAddress!, count: queries.rows, probes: probes.map { Int($0) % 2 == shard ? $0 : -1 },
                                 nprobe: 6, parameters: plain)
            }
        }
        #expect(SearchResults.merge(plainParts, k: 10).ids == (try whole.search(Self.data.queries, parameters: plain)).ids)
    }

    @Test func shardsEqualTheWholeIndexWhateverOrderRowsArriveIn() throws {
        // Coarse 4-bit codes (8 dimensions per subspace) make many equal estimated distances, and
        // the shards receive their rows in a shuffled order, so their rows rank differently from
        // the external ids: only one tie-break rule everywhere (by external id) makes the merged
        // shards return exactly what the whole index returns. Spilled copies land on either shard.
        let configuration = IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 12, subspaces: 4, spillLambda: 1)
        let model = try IVFModel.train(sample: Self.data.base, configuration: configuration, threads: 2)
        var prepared = Self.data.base
        model.prepare(&prepared)
        let assignment = model.assign(prepared)
        var whole = IVFIndex(model: model)
        try whole.add(prepared: prepared, ids: nil, assignment: assignment)
        var rng = SeededGenerator(seed: 5)
        var shards = [IVFIndex(model: model), IVFIndex(model: model)]
        for shard in 0 ..< 2 {
            // A row goes to each shard owning its primary or spill list, in shuffled order.
            let owned = { (list: Int32) in list >= 0 && Int(list) % 2 == shard }
            let rows = (0 ..< prepared.rows).filter { owned(assignment.primary[$0]) || owned(assignment.spill[$0]) }.shuffled(using: &rng)
            let local = IVFModel.Assignment(
                primary: rows.map { owned(assignment.primary[$0]) ? assignment.primary[$0] : assignment.spill[$0] },
                spill: rows.map { owned(assignment.primary[$0]) && owned(assignment.spill[$0]) ? assignment.spill[$0] : -1 })
            try shards[shard].add(prepared: prepared.gathering(rows), ids: rows.map(Int64.init), assignment: local)
        }
        var queries = Self.data.queries
        model.prepare(&queries)
        let nprobe = 5
        let probes = queries.values.withUnsafeBufferPointer { model.probe($0.baseAddress!, count: queries.rows, nprobe: nprobe) }
        for parameters in [SearchParameters(k: 10, nprobe: nprobe, reorderK: 40), SearchParameters(k: 10, nprobe: nprobe, reorderK: 0)] {
            let parts = shards.enumerated().map { shard, index in
                queries.values.withUnsafeBufferPointer {
                    index.candidates(prepared: $0.baseAddress!, count: queries.rows, probes: probes.map { Int($0) % 2 == shard ? $0 : -1 },
                                     nprobe: nprobe, parameters: parameters)
                }
            }
            let merged = parameters.reorderK > 0
                ? SearchResults.mergeCandidates(parts, reorderK: parameters.reorderK, k: parameters.k)
                : SearchResults.merge(parts, k: parameters.k)
            let direct = queries.values.withUnsafeBufferPointer {
                whole.search(prepared: $0.baseAddress!, count: queries.rows, probes: probes, nprobe: nprobe, parameters: parameters)
            }
            let differing = (0 ..< queries.rows).filter {
                merged.ids(ofQuery: $0) != direct.ids(ofQuery: $0) || merged.distances(ofQuery: $0) != direct.distances(ofQuery: $0)
            }
            #expect(differing.isEmpty, "reorderK=\(parameters.reorderK): queries \(differing.prefix(10)) differ")
        }
    }

    @Test(arguments: [Metric.innerProduct, .l2])
    func batchesScanningListByListEqualOneQueryAtATime(metric: Metric) throws {
        let index = try build(IVFConfiguration(dimension: 32, metric: metric, nlist: 24, subspaces: 8,
                                               spillLambda: metric == .innerProduct ? 1 : nil))
        var queries = Self.data.queries
        index.model.prepare(&queries)
        let nprobe = 7
        let probes = queries.values.withUnsafeBufferPointer { q in
            index.model.probeWithDistances(q.baseAddress!, count: queries.rows, nprobe: nprobe)
        }
        for parameters in [SearchParameters(k: 10, nprobe: nprobe, reorderK: 0), SearchParameters(k: 5, nprobe: nprobe, reorderK: 30)] {
            for candidatesOnly in [false, true] {
                let results = [1, 3, 64, 1000].map { batch in
                    queries.values.withUnsafeBufferPointer { q in
                        index.scan(prepared: q.baseAddress!, count: queries.rows, probes: probes.lists, nprobe: nprobe,
                                   parameters: parameters, threads: 2, coarseDistances: probes.distances,
                                   candidatesOnly: candidatesOnly, queriesPerScan: batch)
                    }
                }
                for result in results.dropFirst() {
                    #expect(result == results[0], "\(metric) \(parameters) candidatesOnly=\(candidatesOnly)")
                }
            }
        }
    }

    @Test func float16RawVectorsRefuseValuesFloat16CannotHold() throws {
        let configuration = IVFConfiguration(dimension: 32, metric: .l2, nlist: 4, rawVectors: .float16)
        let model = try IVFModel.train(sample: Self.data.base, configuration: configuration, threads: 2)
        var index = IVFIndex(model: model)
        var vectors = Matrix(rows: 3, dimension: 32)
        vectors.values[1 * 32 + 5] = 65504  // the largest float16: kept
        try index.add(vectors)
        #expect(index.count == 3)
        vectors.values[2 * 32 + 7] = -65520  // rounds to -inf in float16
        #expect(throws: IndexError.outOfHalfRange(row: 2, column: 7, value: -65520)) { try index.add(vectors) }
        #expect(index.count == 3, "a refused batch adds nothing")
        let error = IndexError.outOfHalfRange(row: 2, column: 7, value: -65520)
        #expect(error.description.contains("float32"), "the message says how to fix it")
        // float32 raw vectors take the same values.
        var wide = IVFIndex(model: try IVFModel.train(sample: Self.data.base, configuration: IVFConfiguration(dimension: 32, metric: .l2, nlist: 4), threads: 2))
        try wide.add(vectors)
        #expect(wide.count == 3)
    }

    @Test func badInputIsRejectedWithAClearError() throws {
        let index = try build(IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 10, encoding: .flat))
        #expect(throws: IndexError.dimensionMismatch(expected: 32, got: 8)) {
            try index.search(Matrix(rows: 1, dimension: 8), parameters: SearchParameters())
        }
        #expect(throws: IndexError.self) { try index.search(Self.data.queries, parameters: SearchParameters(k: 0)) }
        #expect(throws: IndexError.self) { try index.search(Self.data.queries, parameters: SearchParameters(k: 10, nprobe: 11)) }
        var nan = Matrix(rows: 2, dimension: 32)
        nan.values[40] = .nan
        let error = #expect(throws: IndexError.self) { try index.search(nan, parameters: SearchParameters(k: 1, nprobe: 1)) }
        #expect(error?.description == "vector 1 has a non-finite value nan at component 8")
        var copy = index
        #expect(throws: IndexError.self) { try copy.add(nan) }
        #expect(copy.count == index.count)
        #expect(throws: IndexError.self) {
            try IVFModel.train(sample: Matrix(rows: 5, dimension: 32), configuration: IVFConfiguration(dimension: 32, metric: .l2, nlist: 10))
        }
        #expect(throws: IndexError.self) {
            try IVFConfiguration(dimension: 30, metric: .l2, nlist: 4, subspaces: 7).validate()
        }
        #expect(throws: IndexError.self) {
            try IVFConfiguration(dimension: 32, metric: .l2, nlist: 4, anisotropicThreshold: 0.2).validate()
        }
    }

    @Test func flatIndexIsExact() throws {
        var flat = FlatIndex(dimension: 32, metric: .l2)
        try flat.add(Self.data.base)
        let results = try flat.search(Self.data.queries, k: 3, threads: 2)
        for query in 0 ..< 5 {
            let q = Array(Self.data.queries[query])
            var best: [(Float, Int64)] = (0 ..< Self.data.base.rows).map { row in
                (zip(q, Self.data.base[row]).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }, Int64(row))
            }
            best.sort { $0 < $1 }
            #expect(Array(results.ids(ofQuery: query)) == best.prefix(3).map(\.1))
            #expect(abs(results.distances(ofQuery: query).first! - best[0].0) < 1e-3)
        }
    }

    @Test func mergeKeepsBestDistancePerId() {
        let a = SearchResults(queryCount: 1, k: 3, ids: [1, 2, 3], distances: [0.1, 0.5, 0.9])
        let b = SearchResults(queryCount: 1, k: 3, ids: [2, 4, -1], distances: [0.2, 0.3, .infinity])
        let merged = SearchResults.merge([a, b], k: 3)
        #expect(merged.ids == [1, 2, 4])
        #expect(merged.distances == [0.1, 0.2, 0.3])
    }
}
