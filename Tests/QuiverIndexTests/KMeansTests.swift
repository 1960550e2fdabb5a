import Testing
@testable import QuiverIndex

@Suite struct KMeansTests {
    @Test func objectiveDecreasesAndClustersAreFilled() {
        let data = SyntheticData(count: 3000, queries: 0, dimension: 16, clusters: 20)
        let result = KMeans.train(data.base, configuration: .init(clusters: 20, iterations: 15, seed: 3))
        let history = result.objectiveHistory
        #expect(history.count >= 2)
        #expect(history.last! < history.first! * 0.8)
        for (previous, next) in zip(history, history.dropFirst()) {
            // Lloyd iterations never raise the objective (empty-cluster splits aside, which cannot
            // happen once every cluster is filled); allow float noise.
            #expect(next <= previous * 1.0001)
        }
        #expect(result.clusterSizes.reduce(0, +) == 3000)
        #expect(result.clusterSizes.allSatisfy { $0 > 0 })
    }

    @Test func seededTrainingIsReproducible() {
        let data = SyntheticData(count: 1000, queries: 0, dimension: 8, clusters: 10)
        let a = KMeans.train(data.base, configuration: .init(clusters: 10, iterations: 5, seed: 9, threads: 2))
        let b = KMeans.train(data.base, configuration: .init(clusters: 10, iterations: 5, seed: 9, threads: 1))
        #expect(a.centroids == b.centroids)
    }

    @Test func candidatePassesKeepLloydsObjective() {
        // 96 clusters ≥ 4 × 8 candidates: passes between full ones compare each point with its
        // 8 nearest centroids from the last full pass only.
        let data = SyntheticData(count: 8000, queries: 0, dimension: 16, clusters: 96)
        let full = KMeans.train(data.base, configuration: .init(clusters: 96, iterations: 16, tolerance: 0, seed: 5, candidates: 0))
        let pruned = KMeans.train(data.base, configuration: .init(clusters: 96, iterations: 16, tolerance: 0, seed: 5, candidates: 8))
        let history = pruned.objectiveHistory
        #expect(history.count > 4)  // pass 3 is the first candidate pass
        for (previous, next) in zip(history, history.dropFirst()) { #expect(next <= previous * 1.0001) }
        #expect(history.last! <= full.objectiveHistory.last! * 1.01)
        // The last objective and sizes are those of a full assignment to the final centroids.
        var assignment = [Int32](repeating: 0, count: data.base.rows)
        var unused: [Int32] = []
        let objective = KMeans.assign(data.base, to: pruned.centroids, spherical: false, threads: 1,
                                      assignment: &assignment, candidates: &unused)
        #expect(abs(objective - history.last!) <= 1e-9 * objective)
        var sizes = [Int](repeating: 0, count: 96)
        for a in assignment { sizes[Int(a)] += 1 }
        #expect(sizes == pruned.clusterSizes)
        // Threads change nothing.
        let twoThreads = KMeans.train(data.base, configuration: .init(clusters: 96, iterations: 16, tolerance: 0, seed: 5,
                                                                       threads: 2, candidates: 8))
        #expect(twoThreads.centroids == pruned.centroids)
    }

    @Test func emptyClustersAreSplit() {
        // 40 points, all but two identical: most initial centroids collide and empty out.
        var values = [Float](repeating: 1, count: 40 * 4)
        values[0] = 5
        values[4] = -5
        let data = Matrix(rows: 40, dimension: 4, values: values)
        let result = KMeans.train(data, configuration: .init(clusters: 3, iterations: 10, seed: 1))
        #expect(result.centroids.values.allSatisfy { $0.isFinite })
        #expect(result.clusterSizes.reduce(0, +) == 40)
    }

    @Test func sphericalCentroidsAreUnitNorm() {
        let data = SyntheticData(count: 2000, queries: 0, dimension: 12, clusters: 8, normalize: true)
        let result = KMeans.train(data.base, configuration: .init(clusters: 8, iterations: 8, seed: 2, spherical: true))
        for norm in Kernels.squaredNorms(result.centroids) { #expect(abs(norm - 1) < 1e-4) }
    }

    @Test func reservoirSampleIsUniformAndBounded() {
        var sampler = ReservoirSampler(capacity: 100, dimension: 1, seed: 4)
        var value: Float = 0
        for _ in 0 ..< 10_000 {
            withUnsafePointer(to: &value) { sampler.offer(UnsafeBufferPointer(start: $0, count: 1)) }
            value += 1
        }
        #expect(sampler.sample.rows == 100)
        #expect(sampler.seen == 10_000)
        let mean = sampler.sample.values.reduce(0, +) / 100
        #expect(mean > 3500 && mean < 6500)
    }
}
