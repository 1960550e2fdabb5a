import CQuiverKernels

/// Lloyd's k-means over a uniform sample, as used for the coarse centroids and for each PQ
/// subspace. Assignment is the blocked GEMM kernel run on several threads.
public enum KMeans {
    /// Relative objective decrease below which Lloyd iterations stop (see `Configuration.tolerance`).
    /// On pkgdesc (632 lists) the objective falls 21%, 5%, 2%, 1.1% … per update and by under
    /// 0.1% from the 13th on: stopping there gives up 0.1 point of recall@10 at the same search
    /// settings for a third less training (bench/results/build.md).
    public static let defaultTolerance = 1e-3
    /// Nearest centroids a point keeps between full assignments (bench/results/kmeans-candidates.md).
    public static let defaultCandidates = 16
    public struct Configuration: Sendable {
        public var clusters: Int
        /// At most this many centroid updates.
        public var iterations: Int = 20
        /// Stop once an update lowers the objective by less than this fraction of it.
        public var tolerance: Double = KMeans.defaultTolerance
        /// At most this many sample points per cluster are used (more gives no gain).
        public var maxPointsPerCluster: Int = 256
        public var seed: UInt64 = 1
        /// Normalise centroids after each update and assign by inner product (for unit vectors).
        public var spherical: Bool = false
        public var threads: Int = 1
        /// With this many clusters or more, a full assignment keeps each point's `candidates`
        /// nearest centroids, and the assignments in between compare each point with those only
        /// (see `train`). 0 turns the shortcut off.
        public var candidates: Int = KMeans.defaultCandidates
        /// Every this many assignments one is full (besides the first ones and the last).
        public var fullAssignmentEvery: Int = 4

        public init(clusters: Int, iterations: Int = 20, tolerance: Double = KMeans.defaultTolerance,
                    maxPointsPerCluster: Int = 256, seed: UInt64 = 1, spherical: Bool = false, threads: Int = 1,
                    candidates: Int = KMeans.defaultCandidates) {
            self.candidates = candidates
            self.clusters = clusters
            self.iterations = iterations
            self.tolerance = tolerance
            self.maxPointsPerCluster = maxPointsPerCluster
            self.seed = seed
            self.spherical = spherical
            self.threads = threads
        }
    }

    public struct Result: Sendable {
        public var centroids: Matrix
        /// Points of the training sample assigned to each centroid in the last iteration.
        public var clusterSizes: [Int]
        /// The objective after each iteration's assignment: the sum of squared L2 distances
        /// (or, spherical, the sum of 1 − ⟨x, c⟩) from each sample point to its centroid.
        public var objectiveHistory: [Double]
    }

    public static func train(_ data: Matrix, configuration: Configuration) -> Result {
        let k = configuration.clusters
        precondition(k > 0, "k-means needs at least one cluster")
        precondition(data.rows >= k, "k-means needs at least as many points (\(data.rows)) as clusters (\(k))")
        var generator = SeededGenerator(seed: configuration.seed)
        let sampleSize = min(data.rows, configuration.maxPointsPerCluster * k)
        let sample = sampleSize < data.rows
            ? data.gathering(uniformSample(population: data.rows, sampleSize: sampleSize, generator: &generator))
            : data
        let dimension = data.dimension

        // Initial centroids: k distinct sample points chosen uniformly.
        var centroids = sample.gathering(uniformSample(population: sample.rows, sampleSize: k, generator: &generator).shuffled(using: &generator))
        if configuration.spherical { centroids.normalizeRows() }
        var assignment = [Int32](repeating: 0, count: sample.rows)
        var history: [Double] = []
        var sizes = [Int](repeating: 0, count: k)

        // Assign, then update, until an update stops paying or the iterations run out; the last
        // assignment is for the final centroids, so it gives their sizes and objective.
        //
        // Once the centroids settle, a point moves, if at all, to one of the few centroids that
        // were nearest to it a pass ago. So with many clusters the full assignment (a GEMM
        // against every centroid, nearly all of the training time) runs only for the first three
        // passes (the centroids still move far), every `fullAssignmentEvery`-th one and the
        // last; it keeps each point's `candidates` nearest centroids, and the passes in between
        // compare the point with those only.
        // The candidates always hold the point's current centroid, so no pass raises the
        // objective, as in plain Lloyd; the final full pass gives exact sizes and objective. (A
        // centroid re-seeded by an empty-cluster split gains its points at the next full pass.)
        let keep = configuration.candidates > 0 && k >= 4 * configuration.candidates ? configuration.candidates : 0
        var candidates = [Int32](repeating: 0, count: keep * sample.rows)
        // The sample's norms do not change between passes.
        let sampleNorms: [Float] = keep > 0 && !configuration.spherical ? Kernels.squaredNorms(sample) : []
        let every = max(1, configuration.fullAssignmentEvery)
        let warmUp = 3
        var updates = 0
        var pass = 0
        var lastWasFull = false
        while true {
            let full = keep == 0 || pass < warmUp || pass % every == 0
            let objective = full
                ? assign(sample, to: centroids, spherical: configuration.spherical,
                         threads: configuration.threads, assignment: &assignment, keep: keep, candidates: &candidates)
                : assignAmongCandidates(sample, to: centroids, spherical: configuration.spherical,
                                        threads: configuration.threads, candidates: candidates, keep: keep,
                                        rowNorms: sampleNorms, assignment: &assignment)
            history.append(objective)
            lastWasFull = full
            pass += 1
            let converged = history.count >= 2 && history[history.count - 2] - objective <= configuration.tolerance * objective
            if converged || updates >= max(1, configuration.iterations) { break }
            _ = update(&centroids, sample: sample, assignment: assignment, generator: &generator)
            if configuration.spherical { centroids.normalizeRows() }
            updates += 1
        }
        if !lastWasFull {
            history.append(assign(sample, to: centroids, spherical: configuration.spherical,
                                  threads: configuration.threads, assignment: &assignment, keep: 0, candidates: &candidates))
        }
        sizes = [Int](repeating: 0, count: k)
        for a in assignment { sizes[Int(a)] += 1 }
        _ = dimension
        return Result(centroids: centroids, clusterSizes: sizes, objectiveHistory: history)
    }

    /// Assigns each row to its nearest centroid (the lowest index on ties); returns the objective.
    /// With `keep` > 0 it also writes each row's `keep` nearest centroids, in index order, to
    /// `candidates[row * keep ..< (row + 1) * keep]`.
    static func assign(_ sample: Matrix, to centroids: Matrix, spherical: Bool, threads: Int,
                       assignment: inout [Int32], keep: Int = 0, candidates: inout [Int32]) -> Double {
        let norms = Kernels.squaredNorms(centroids)
        let workers = max(1, threads)
        var partial = [Double](repeating: 0, count: workers)
        let comparison: CentroidComparison = spherical ? .innerProduct : .l2
        let k = centroids.rows
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * (k + 16))
        defer { scratch.deallocate() }
        assignment.withUnsafeMutableBufferPointer { assigned in
            partial.withUnsafeMutableBufferPointer { partialSums in
                candidates.withUnsafeMutableBufferPointer { kept in
                    sample.values.withUnsafeBufferPointer { rows in
                        forEachCentroidDistanceBlock(rows: rows.baseAddress!, count: sample.rows, dimension: sample.dimension,
                                                     centroids: centroids, centroidNorms: norms, comparison: comparison,
                                                     threads: workers) { range, distances, worker in
                            var sum = 0.0
                            for (local, row) in range.enumerated() {
                                let line = distances + local * k
                                let best: Int
                                let value: Float
                                if keep > 0 {
                                    let chosen = kept.baseAddress! + row * keep
                                    _ = quiver_smallest(line, k, keep, chosen, scratch + worker * (k + 16))
                                    // In index order, so the first minimum is the lowest index.
                                    var b = Int(chosen[0])
                                    var v = line[b]
                                    for j in 1 ..< keep where line[Int(chosen[j])] < v {
                                        b = Int(chosen[j])
                                        v = line[b]
                                    }
                                    (best, value) = (b, v)
                                } else {
                                    (best, value) = argmin(line, count: k)
                                }
                                assigned[row] = Int32(best)
                                sum += spherical ? Double(1 + value) : Double(value)
                            }
                            partialSums[worker] += sum
                        }
                    }
                }
            }
        }
        return partial.reduce(0, +)
    }

    /// Assigns each row to the nearest of its `keep` candidate centroids (the lowest index on
    /// ties); returns the objective. Distances are computed as the full assignment computes them;
    /// `rowNorms` are the rows' squared norms (unused, and may be empty, when spherical).
    static func assignAmongCandidates(_ sample: Matrix, to centroids: Matrix, spherical: Bool, threads: Int,
                                      candidates: [Int32], keep: Int, rowNorms: [Float],
                                      assignment: inout [Int32]) -> Double {
        let norms = Kernels.squaredNorms(centroids)
        let workers = max(1, threads)
        var partial = [Double](repeating: 0, count: workers)
        let d = sample.dimension
        assignment.withUnsafeMutableBufferPointer { assigned in
            partial.withUnsafeMutableBufferPointer { partialSums in
                sample.values.withUnsafeBufferPointer { rows in
                    centroids.values.withUnsafeBufferPointer { centers in
                        candidates.withUnsafeBufferPointer { kept in
                            parallelFor(count: sample.rows, threads: workers, chunk: 1024) { range, worker in
                                var sum = 0.0
                                for row in range {
                                    let x = rows.baseAddress! + row * d
                                    let chosen = kept.baseAddress! + row * keep
                                    var best = Int32.max
                                    var bestValue = Float.infinity
                                    for j in 0 ..< keep {
                                        let c = chosen[j]
                                        let dot = quiver_dot(x, centers.baseAddress! + Int(c) * d, d)
                                        let value = spherical ? -dot : max(0, rowNorms[row] - 2 * dot + norms[Int(c)])
                                        if value < bestValue || (value == bestValue && c < best) {
                                            best = c
                                            bestValue = value
                                        }
                                    }
                                    assigned[row] = best
                                    sum += spherical ? Double(1 + bestValue) : Double(bestValue)
                                }
                                partialSums[worker] += sum
                            }
                        }
                    }
                }
            }
        }
        return partial.reduce(0, +)
    }

    /// Moves each centroid to the mean of its points. An empty cluster takes half of the largest
    /// one: it becomes a slightly perturbed copy of that centroid, so the next assignment splits it.
    static func update(_ centroids: inout Matrix, sample: Matrix, assignment: [Int32],
                       generator: inout SeededGenerator) -> [Int] {
        let k = centroids.rows
        let dimension = centroids.dimension
        var sums = [Double](repeating: 0, count: k * dimension)
        var sizes = [Int](repeating: 0, count: k)
        sample.values.withUnsafeBufferPointer { rows in
            sums.withUnsafeMutableBufferPointer { sums in
                for (row, cluster) in assignment.enumerated() {
                    let c = Int(cluster)
                    sizes[c] += 1
                    let source = rows.baseAddress! + row * dimension
                    let target = sums.baseAddress! + c * dimension
                    for j in 0 ..< dimension { target[j] += Double(source[j]) }
                }
            }
        }
        centroids.values.withUnsafeMutableBufferPointer { values in
            for c in 0 ..< k where sizes[c] > 0 {
                let inverse = 1 / Double(sizes[c])
                for j in 0 ..< dimension { values[c * dimension + j] = Float(sums[c * dimension + j] * inverse) }
            }
            for empty in 0 ..< k where sizes[empty] == 0 {
                // Split the largest cluster: the empty centroid and the big one move apart symmetrically.
                let largest = sizes.indices.max { sizes[$0] < sizes[$1] }!
                guard sizes[largest] > 1 else { continue }
                for j in 0 ..< dimension {
                    let value = values[largest * dimension + j]
                    let epsilon: Float = Bool.random(using: &generator) ? 1.0 / 1024 : -1.0 / 1024
                    values[empty * dimension + j] = value * (1 + epsilon)
                    values[largest * dimension + j] = value * (1 - epsilon)
                }
                sizes[empty] = sizes[largest] / 2
                sizes[largest] -= sizes[empty]
            }
        }
        return sizes
    }
}
