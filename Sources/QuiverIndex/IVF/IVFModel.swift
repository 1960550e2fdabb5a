import CQuiverKernels
import Synchronization
/// The trained global model that the coordinator ships to every worker: coarse centroids and,
/// for PQ encodings, the codebooks of the residuals. Workers hold lists built on it.
public struct IVFModel: Sendable, Equatable {
    public let configuration: IVFConfiguration
    public let centroids: Matrix
    public let centroidNorms: [Float]
    public let quantizer: ProductQuantizer?
    /// How queries rank lists when probing: inner product for inner-product metrics, L2
    /// otherwise. Stored vectors always join the list of their nearest centroid by L2 (see `assign`).
    public let comparison: CentroidComparison
    /// Increases with every retraining; lists and queries name the version they were built for.
    public var version: UInt64
    /// ⟨cᵢ, cⱼ⟩ of every pair of centroids, computed on the first spilling assignment that uses it.
    private let gram = CentroidGram()

    /// SOAR's loss for a candidate list c needs ⟨c, c₁⟩ (c₁ the primary's centroid). Up to this
    /// many lists (16 MiB of products) they come from the centroids' Gram matrix, computed once;
    /// above it, from a d-long dot product per candidate and row.
    public static let gramLimit = 2048

    public init(configuration: IVFConfiguration, centroids: Matrix, quantizer: ProductQuantizer?, version: UInt64 = 1) {
        self.configuration = configuration
        self.centroids = centroids
        self.centroidNorms = Kernels.squaredNorms(centroids)
        self.quantizer = quantizer
        self.comparison = configuration.metric.usesInnerProduct ? .innerProduct : .l2
        self.version = version
    }

    public var dimension: Int { configuration.dimension }
    public var nlist: Int { centroids.rows }
    public var isSpilling: Bool { configuration.spillLambda != nil && centroids.rows > 1 }

    /// Trains centroids (k-means on at most 256·nlist points) and, for PQ encodings, the residual
    /// codebooks. `sample` is raw input; it is normalised here for cosine.
    public static func train(sample: Matrix, configuration: IVFConfiguration, threads: Int = 1) throws(IndexError) -> IVFModel {
        try configuration.validate()
        guard sample.dimension == configuration.dimension else {
            throw .dimensionMismatch(expected: configuration.dimension, got: sample.dimension)
        }
        guard sample.rows >= configuration.nlist else {
            throw .notEnoughTrainingData(needed: configuration.nlist, got: sample.rows)
        }
        var data = sample
        if configuration.metric.normalizesInput { data.normalizeRows() }
        let spherical = configuration.spherical ?? (configuration.metric.usesInnerProduct && isUnitNorm(data))
        let coarse = KMeans.train(data, configuration: .init(
            clusters: configuration.nlist, iterations: configuration.trainingIterations,
            seed: configuration.seed, spherical: spherical, threads: threads))
        var model = IVFModel(configuration: configuration, centroids: coarse.centroids, quantizer: nil)
        guard configuration.encoding != .flat else { return model }

        // Codebooks are trained on residuals against each point's own list centroid.
        let trainingRows = min(data.rows, 256 << configuration.bitsPerCode)
        var generator = SeededGenerator(seed: configuration.seed &+ 0x5EED)
        let picked = data.gathering(uniformSample(population: data.rows, sampleSize: trainingRows, generator: &generator))
        let assignment = model.assign(picked, threads: threads)
        var residuals = picked
        residuals.values.withUnsafeMutableBufferPointer { values in
            model.centroids.values.withUnsafeBufferPointer { centroids in
                let d = configuration.dimension
                for row in 0 ..< picked.rows {
                    let list = Int(assignment.primary[row])
                    for j in 0 ..< d { values[row * d + j] -= centroids[list * d + j] }
                }
            }
        }
        let quantizer = ProductQuantizer.train(residuals: residuals, subspaces: configuration.subspaces,
                                               bitsPerCode: configuration.bitsPerCode,
                                               iterations: configuration.trainingIterations,
                                               seed: configuration.seed &+ 0x50, threads: threads)
        model = IVFModel(configuration: configuration, centroids: coarse.centroids, quantizer: quantizer)
        return model
    }

    private static func isUnitNorm(_ data: Matrix) -> Bool {
        let norms = Kernels.squaredNorms(data)
        return norms.allSatisfy { abs($0 - 1) < 1e-2 }
    }

    // MARK: - Assignment

    /// The list of each vector and, when spilling, its second list (−1 for none).
    public struct Assignment: Sendable, Equatable {
        public var primary: [Int32]
        public var spill: [Int32]

        public init(primary: [Int32], spill: [Int32]) {
            self.primary = primary
            self.spill = spill
        }
    }

    /// Assigns prepared (already normalised, for cosine) vectors to lists: each joins the list of
    /// its nearest centroid by L2, whatever the metric. The centroids are L2 k-means means, so
    /// this keeps residuals small and lists even; ranking by ⟨x, c⟩ instead ignores ‖c‖² and lets
    /// large-norm centroids pull in far points (on non-unit-norm data: residuals several times
    /// larger, one list 76× the mean). Queries still probe by inner product for IP metrics. With
    /// spilling, the second list minimises the SOAR loss `‖r‖² + λ·⟨r, r₁⟩²/‖r₁‖²` over every
    /// list (over the 64 nearest by L2 past the Gram matrix's 2,048 lists), so its residual is as
    /// orthogonal as possible to the first one's.
    public func assign(_ vectors: Matrix, threads: Int = 1) -> Assignment {
        vectors.values.withUnsafeBufferPointer { assign($0.baseAddress!, count: vectors.rows, threads: threads) }
    }

    public func assign(_ vectors: UnsafePointer<Float>, count: Int, threads: Int = 1) -> Assignment {
        assign(vectors, count: count, threads: threads, useGram: nlist <= Self.gramLimit)
    }

    func assign(_ vectors: UnsafePointer<Float>, count: Int, threads: Int, useGram: Bool) -> Assignment {
        let d = dimension
        let k = nlist
        var primary = [Int32](repeating: -1, count: count)
        var spill = [Int32](repeating: -1, count: count)
        let lambda = isSpilling ? configuration.spillLambda! : nil
        let candidates = min(k, 64)
        let workers = max(1, threads)
        let vectorNorms = Kernels.squaredNorms(vectors, rows: count, dimension: d)
        let gramValues = lambda != nil && useGram ? gram.values(of: centroids) : []
        gramValues.withUnsafeBufferPointer { gramValues in
            primary.withUnsafeMutableBufferPointer { primaryOut in
                spill.withUnsafeMutableBufferPointer { spillOut in
                    centroids.values.withUnsafeBufferPointer { centroidValues in
                        // Distances here are −⟨x, c⟩; the L2 ranking adds ‖c‖².
                        forEachCentroidDistanceBlock(rows: vectors, count: count, dimension: d, centroids: centroids,
                                                     centroidNorms: centroidNorms, comparison: .innerProduct,
                                                     threads: workers) { range, block, _ in
                            var rank = [Float](repeating: 0, count: k)
                            var scratch = [Float](repeating: 0, count: k + 16)
                            var nearest = [Int32](repeating: 0, count: candidates)
                            for (local, row) in range.enumerated() {
                                let negatedIP = block + local * k
                                let xNorm = vectorNorms[row]
                                // ‖x − c‖² − ‖x‖² ranks as L2.
                                for c in 0 ..< k { rank[c] = centroidNorms[c] + 2 * negatedIP[c] }
                                let first = Int(quiver_argmin(rank, k))
                                primaryOut[row] = Int32(first)
                                guard let lambda, k > 1 else { continue }
                                // r₁ = x − c₁; for each candidate c: ‖x − c‖² + λ·⟨x − c, r₁⟩²/‖r₁‖², with
                                // every term from products already known: ‖r₁‖² = ‖x‖² + rank(c₁),
                                // ⟨x, r₁⟩ = ‖x‖² − ⟨x, c₁⟩ and ⟨c, r₁⟩ = ⟨c, x⟩ − ⟨c, c₁⟩.
                                let r1Norm = max(0, xNorm + rank[first])
                                let xDotR1 = xNorm + negatedIP[first]
                                let inverseR1 = r1Norm > 0 ? 1 / r1Norm : 0
                                if !gramValues.isEmpty {
                                    // Every list is a candidate: one SIMD pass over the losses.
                                    spillOut[row] = rank.withUnsafeBufferPointer { rank in
                                        var spillRow = quiver_spill_row(rank: rank.baseAddress!, neg_ip: negatedIP,
                                                                        gram: gramValues.baseAddress! + first * k,
                                                                        first: Int32(first), x_norm: xNorm, x_dot_r1: xDotR1,
                                                                        lambda: lambda, inv_r1: inverseR1)
                                        return quiver_soar_spill(&spillRow, k)
                                    }
                                    continue
                                }
                                // Past the Gram matrix's size: the nearest few (in list order) are the
                                // candidates, each costing a d-long product with c₁.
                                let found = quiver_smallest(rank, k, candidates, &nearest, &scratch)
                                let c1 = centroidValues.baseAddress! + first * d
                                // The smallest loss; equal losses go to the nearer list, then the lower one
                                // (the order of a nearest-first walk). The loss is at least ‖x − c‖², so a
                                // candidate farther than the best loss so far cannot win.
                                var best = -1
                                var bestLoss = Float.infinity
                                for candidate in nearest[0 ..< found] where Int(candidate) != first {
                                    let c = Int(candidate)
                                    let squared = xNorm + 2 * negatedIP[c] + centroidNorms[c]
                                    if squared > bestLoss { continue }
                                    let cDotC1 = Kernels.dot(centroidValues.baseAddress! + c * d, c1, dimension: d)
                                    let projection = xDotR1 + negatedIP[c] + cDotC1
                                    let loss = squared + lambda * projection * projection * inverseR1
                                    if loss < bestLoss || (loss == bestLoss && best >= 0 && (rank[c], c) < (rank[best], best)) {
                                        bestLoss = loss
                                        best = c
                                    }
                                }
                                spillOut[row] = Int32(best)
                            }
                        }
                    }
                }
            }
        }
        return Assignment(primary: primary, spill: spill)
    }

    // MARK: - Probing

    /// The `nprobe` nearest lists of each prepared query, nearest first (`count × nprobe`).
    public func probe(_ queries: UnsafePointer<Float>, count: Int, nprobe: Int, threads: Int = 1) -> [Int32] {
        probeWithDistances(queries, count: count, nprobe: nprobe, threads: threads).lists
    }

    /// Like `probe`, also returning each probed list's coarse distance (for inner product
    /// −⟨q, c⟩, which the scan reuses as the list's score offset).
    public func probeWithDistances(_ queries: UnsafePointer<Float>, count: Int, nprobe: Int,
                                   threads: Int = 1) -> (lists: [Int32], distances: [Float]) {
        let k = nlist
        let probes = min(nprobe, k)
        var lists = [Int32](repeating: -1, count: count * probes)
        var coarse = [Float](repeating: .infinity, count: count * probes)
        lists.withUnsafeMutableBufferPointer { out in
            coarse.withUnsafeMutableBufferPointer { outDistances in
                forEachCentroidDistanceBlock(rows: queries, count: count, dimension: dimension, centroids: centroids,
                                             centroidNorms: centroidNorms, comparison: comparison,
                                             threads: threads) { range, block, _ in
                    var nearest = TopK(capacity: probes)
                    var chosen = [Int32](repeating: 0, count: probes)
                    var scratch = [Float](repeating: 0, count: k + 16)
                    var ranked: [(distance: Float, list: Int32)] = []
                    ranked.reserveCapacity(probes)
                    for (local, row) in range.enumerated() {
                        let distances = block + local * k
                        // The SIMD select keeps what a heap of `probes` would (ties to the lower
                        // list) without a push per list. It orders NaN as a number, which the
                        // heap never keeps: a row whose chosen lists hold one takes the heap.
                        let found = quiver_smallest(distances, k, probes, &chosen, &scratch)
                        ranked.removeAll(keepingCapacity: true)
                        for list in chosen[..<found] { ranked.append((distances[Int(list)], list)) }
                        if ranked.contains(where: { $0.distance.isNaN }) {
                            ranked.removeAll(keepingCapacity: true)
                            for c in 0 ..< k where distances[c] <= nearest.threshold {
                                nearest.push(distance: distances[c], id: Int64(c))
                            }
                            for entry in nearest.drainSorted() { ranked.append((entry.distance, Int32(entry.id))) }
                        } else {
                            ranked.sort { ($0.distance, $0.list) < ($1.distance, $1.list) }
                        }
                        for (rank, entry) in ranked.enumerated() {
                            out[row * probes + rank] = entry.list
                            outDistances[row * probes + rank] = entry.distance
                        }
                    }
                }
            }
        }
        return (lists, coarse)
    }

    /// Normalises rows for cosine; other metrics take vectors as they are.
    public func prepare(_ vectors: inout Matrix) {
        if configuration.metric.normalizesInput { vectors.normalizeRows() }
    }
}

extension CentroidComparison: Equatable {}

/// The Gram matrix of a model's centroids, computed once, on first use, and shared by every copy
/// of the model. A cache: it takes no part in the model's equality.
final class CentroidGram: Sendable, Equatable {
    private let cache = Mutex<[Float]?>(nil)

    func values(of centroids: Matrix) -> [Float] {
        cache.withLock { cached in
            if let cached { return cached }
            let k = centroids.rows
            let products = [Float](unsafeUninitializedCapacity: k * k) { buffer, initialized in
                centroids.values.withUnsafeBufferPointer { c in
                    quiver_inner_products(c.baseAddress!, k, c.baseAddress!, k, centroids.dimension, buffer.baseAddress!, k)
                }
                initialized = k * k
            }
            cached = products
            return products
        }
    }

    static func == (lhs: CentroidGram, rhs: CentroidGram) -> Bool { true }
}
