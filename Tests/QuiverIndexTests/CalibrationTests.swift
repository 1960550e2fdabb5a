import Testing
@testable import QuiverIndex

@Suite struct CalibrationTests {
    static let data = SyntheticData(count: 4000, queries: 200, dimension: 16, clusters: 30, spread: 0.6, normalize: true, seed: 31)

    static func index(metric: Metric = .innerProduct) throws -> IVFIndex {
        let configuration = IVFConfiguration(dimension: 16, metric: metric, nlist: 32, subspaces: 4,
                                             spillLambda: metric == .l2 ? nil : 1)
        var index = IVFIndex(model: try IVFModel.train(sample: data.base, configuration: configuration))
        try index.add(data.base, ids: (0 ..< 4000).map { Int64($0) * 3 + 1 })
        return index
    }

    @Test(arguments: [Metric.innerProduct, .l2])
    func sampleTruthIsTheExactNeighboursLeavingTheQueryOut(metric: Metric) throws {
        let index = try Self.index(metric: metric)
        let sample = try Calibration.sample(from: index, count: 50, k: 5)
        #expect(sample.queries.rows == 50 && sample.truth.count == 250)
        var flat = FlatIndex(dimension: 16, metric: metric)
        try flat.add(Self.data.base, ids: index.externalIDs)
        let exact = try flat.search(sample.queries, k: 6)
        for query in 0 ..< 50 {
            let expected = exact.ids(ofQuery: query).filter { $0 != sample.selfIDs[query] }.prefix(5)
            #expect(Array(sample.truth[query * 5 ..< query * 5 + 5]) == Array(expected), "query \(query)")
            #expect(!sample.truth[query * 5 ..< query * 5 + 5].contains(sample.selfIDs[query]))
        }
    }

    @Test func calibratedSettingsReachTheTargetOnTheSampleAtLeastCost() throws {
        let index = try Self.index()
        let sample = try Calibration.sample(from: index, count: 150, k: 10)
        for target in [0.8, 0.95] {
            let settings = Calibration.calibrate(index, sample: sample, target: target)
            #expect(settings.reached, "target \(target): \(settings)")
            #expect(settings.sampleRecall >= target)
            // Measured again, the chosen settings give what calibration recorded.
            let again = try index.search(sample.queries, parameters: SearchParameters(k: 11, nprobe: settings.nprobe, reorderK: settings.reorderK))
            #expect(Calibration.recall(again, sample: sample) == settings.sampleRecall)
            // A smaller nprobe at the same depth does not reach the target (or nprobe is already 1).
            if settings.nprobe > 1 {
                let fewer = try index.search(sample.queries, parameters: SearchParameters(k: 11, nprobe: settings.nprobe - 1, reorderK: settings.reorderK))
                #expect(Calibration.recall(fewer, sample: sample) < target || settings.reorderK > 0)
            }
        }
        // An impossible target reports the most accurate settings tried, marked not reached.
        let impossible = Calibration.calibrate(index, sample: sample, target: 1.01)
        #expect(!impossible.reached)
    }

    @Test func settingsFromASampleIndexScaleTheRerankDepth() {
        let settings = Calibration.Settings(nprobe: 8, reorderK: 30, k: 10, target: 0.95, sampleRecall: 0.96,
                                            secondsPerQuery: 1e-4, sampleQueries: 500, reached: true)
        let scaled = settings.scaled(fromRows: 10_000, toRows: 100_000)
        #expect(scaled.nprobe == 8 && scaled.reorderK == 300)
        #expect(settings.scaled(fromRows: 100_000, toRows: 100_000) == settings)
        #expect(Calibration.depthLadder(k: 10).prefix(6) == [13, 15, 18, 20, 25, 30])
        #expect(Calibration.ladder(upTo: 40) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 40])
    }

    /// What a coordinator does with a training sample: calibrate on an index of (a subset of)
    /// the rows, then use the settings on the whole collection, for queries it never saw.
    @Test(arguments: [4000, 1500])
    func settingsCalibratedFromRowsAloneHoldForOtherQueriesOnTheWholeIndex(maxRows: Int) throws {
        let index = try Self.index()
        let found = try Calibration.calibrate(model: index.model, rows: Self.data.base, targets: [0.95, 0.8], maxRows: maxRows, queries: 150)
        #expect(found.indexed == maxRows)
        #expect(found.levels.map(\.target) == [0.8, 0.95])
        #expect(found.levels.allSatisfy { $0.reached && $0.sampleRecall >= $0.target })
        var flat = FlatIndex(dimension: 16, metric: .innerProduct)
        try flat.add(Self.data.base, ids: index.externalIDs)
        let exact = try flat.search(Self.data.queries, k: 10)
        for level in found.levels {
            let settings = level.scaled(fromRows: found.indexed, toRows: index.count)
            let results = try index.search(Self.data.queries, parameters: SearchParameters(k: 10, nprobe: settings.nprobe, reorderK: settings.reorderK))
            var hits = 0
            for query in 0 ..< Self.data.queries.rows {
                hits += Set(results.ids(ofQuery: query)).intersection(exact.ids(ofQuery: query)).count
            }
            let recall = Double(hits) / Double(Self.data.queries.rows * 10)
            #expect(recall >= level.target - 0.03, "target \(level.target), \(settings): recall \(recall) on the real queries")
        }
    }

    @Test func depthGrowthIsAPowerLawThroughTwoMeasurementsClamped() {
        #expect(abs(Calibration.growthExponent(depth: 100, rows: 400_000, smallDepth: 50, smallRows: 100_000) - 0.5) < 1e-9)
        #expect(abs(Calibration.growthExponent(depth: 200, rows: 400_000, smallDepth: 50, smallRows: 100_000) - 1) < 1e-9)
        #expect(Calibration.growthExponent(depth: 60, rows: 400_000, smallDepth: 50, smallRows: 100_000) == 0.5)
        #expect(Calibration.growthExponent(depth: 800, rows: 400_000, smallDepth: 50, smallRows: 100_000) == 1)
        #expect(Calibration.growthExponent(depth: 100, rows: 400_000, smallDepth: nil, smallRows: 100_000) == 1)
        var settings = Calibration.Settings(nprobe: 8, reorderK: 30, k: 10, target: 0.95, sampleRecall: 0.96,
                                            secondsPerQuery: 1e-4, sampleQueries: 500, reached: true)
        settings.depthGrowth = 0.5
        #expect(settings.scaled(fromRows: 10_000, toRows: 40_000).reorderK == 60)
    }

    /// Calibrated on a quarter of the rows, its depth's growth measured on a quarter of that, the
    /// settings still reach their targets on the whole index, for queries never seen.
    @Test func measuredDepthGrowthHoldsOnFourTimesTheRows() throws {
        let data = SyntheticData(count: 40_000, queries: 200, dimension: 16, clusters: 60, spread: 0.6, normalize: true, seed: 32)
        let configuration = IVFConfiguration(dimension: 16, metric: .innerProduct, nlist: 128, subspaces: 4, spillLambda: 1)
        var index = IVFIndex(model: try IVFModel.train(sample: data.base, configuration: configuration, threads: 2))
        try index.add(data.base, threads: 2)
        let found = try Calibration.calibrate(model: index.model, rows: data.base, targets: [0.8, 0.95], maxRows: 10_000,
                                              queries: 200, threads: 2)
        #expect(found.indexed == 10_000)
        var flat = FlatIndex(dimension: 16, metric: .innerProduct)
        try flat.add(data.base)
        let exact = try flat.search(data.queries, k: 10)
        for level in found.levels {
            let growth = try #require(level.depthGrowth, "\(level)")
            #expect(growth >= 0.5 && growth <= 1)
            let settings = level.scaled(fromRows: found.indexed, toRows: index.count)
            let results = try index.search(data.queries, parameters: SearchParameters(k: 10, nprobe: settings.nprobe, reorderK: settings.reorderK))
            var hits = 0
            for query in 0 ..< data.queries.rows {
                hits += Set(results.ids(ofQuery: query)).intersection(exact.ids(ofQuery: query)).count
            }
            let recall = Double(hits) / Double(data.queries.rows * 10)
            #expect(recall >= level.target - 0.03, "target \(level.target), \(settings): recall \(recall) on the real queries")
        }
    }
}
