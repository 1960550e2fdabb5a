import CQuiverKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Search settings chosen from a recall target instead of knobs: from sample queries drawn from
/// the data and their exact neighbours, the cheapest `nprobe` and re-rank depth whose recall@k on
/// the sample reaches the target. Transport-free: an in-process index calibrates itself; a
/// coordinator, which holds the model and a sample of the data but not the lists, calibrates an
/// index built from that sample (`IVFIndex(model:sample:)`) and scales the re-rank depth to the
/// collection (`Calibration.Settings.scaled(toRows:)`).
public enum Calibration {
    /// Sample queries and their exact k nearest neighbours.
    public struct Sample: Sendable, Equatable {
        /// Prepared queries (normalised for cosine).
        public var queries: Matrix
        /// Each query's own id when it was drawn from the indexed data (left out of its answers,
        /// since it would always be its own nearest neighbour), −1 otherwise.
        public var selfIDs: [Int64]
        /// `queries.rows × k` external ids, nearest first.
        public var truth: [Int64]
        public var k: Int

        public init(queries: Matrix, selfIDs: [Int64], truth: [Int64], k: Int) {
            precondition(selfIDs.count == queries.rows && truth.count == queries.rows * k)
            self.queries = queries
            self.selfIDs = selfIDs
            self.truth = truth
            self.k = k
        }
    }

    /// What calibration chose, and what it measured on the sample.
    public struct Settings: Sendable, Equatable, Codable, CustomStringConvertible {
        public var nprobe: Int
        public var reorderK: Int
        public var k: Int
        /// The recall target asked for.
        public var target: Double
        /// recall@k of these settings on the sample queries.
        public var sampleRecall: Double
        /// CPU seconds per sample query at these settings (one thread, batched).
        public var secondsPerQuery: Double
        /// Sample queries measured.
        public var sampleQueries: Int
        /// False when no setting tried reached the target; the settings are then the most
        /// accurate ones tried.
        public var reached: Bool
        /// The exponent by which the re-rank depth grows with the rows indexed (depth ∝ rowsᵅ),
        /// measured by `calibrate(model:rows:…)`; nil (records from before it was measured) is 1.
        public var depthGrowth: Double? = nil

        public init(nprobe: Int, reorderK: Int, k: Int, target: Double, sampleRecall: Double, secondsPerQuery: Double,
                    sampleQueries: Int, reached: Bool) {
            self.nprobe = nprobe
            self.reorderK = reorderK
            self.k = k
            self.target = target
            self.sampleRecall = sampleRecall
            self.secondsPerQuery = secondsPerQuery
            self.sampleQueries = sampleQueries
            self.reached = reached
        }

        public var parameters: SearchParameters { SearchParameters(k: k, nprobe: nprobe, reorderK: reorderK) }

        /// Settings found on an index of `sampleRows` rows, for an index of `rows` rows on the same
        /// model: the lists are `rows / sampleRows` times longer, so more candidates crowd the
        /// true neighbours and the re-rank depth grows, by (rows / sampleRows)^depthGrowth.
        /// Growth in proportion (an exponent of 1) is the safe side and what records without a
        /// measured exponent get; it overshot badly far out: calibrated on 500,000 rows of a
        /// 10M-row synthetic set, the 0.95 level re-ranked 1,760 and reached 0.981 at about a sixth
        /// of the QPS it needed. nprobe stays: which lists hold a query's neighbours does not depend
        /// on how many vectors they hold (a sparser sample, if anything, asks for more).
        public func scaled(fromRows sampleRows: Int, toRows rows: Int) -> Settings {
            guard reorderK > 0, sampleRows > 0, rows > sampleRows else { return self }
            var settings = self
            let factor = pow(Double(rows) / Double(sampleRows), depthGrowth ?? 1)
            settings.reorderK = min(100_000, Int((Double(reorderK) * factor).rounded(.up)))
            return settings
        }

        public var description: String {
            let recall = (sampleRecall * 10000).rounded() / 10000
            let growth = depthGrowth.map { ", depth ∝ rows^\(($0 * 100).rounded() / 100)" } ?? ""
            return "nprobe \(nprobe), re-rank \(reorderK) (recall@\(k) \(recall) on \(sampleQueries) sample queries, "
                + "target \(target)\(reached ? "" : ", not reached")\(growth))"
        }
    }

    /// `count` queries drawn uniformly from the index's stored rows (it must keep raw vectors,
    /// or be flat), with their exact neighbours among all stored rows, themselves left out.
    public static func sample(from index: IVFIndex, count: Int, k: Int, seed: UInt64 = 7,
                              threads: Int = 1) throws(IndexError) -> Sample {
        guard index.count > k else { throw .invalidParameter("calibration needs more than k = \(k) stored vectors, the index has \(index.count)") }
        let raw = index.rawVectors
        guard raw.precision != .none else {
            throw .invalidParameter("calibrating from the index's own rows needs raw vectors (store float32 or float16)")
        }
        var generator = SeededGenerator(seed: seed)
        let rows = uniformSample(population: index.count, sampleSize: min(count, index.count), generator: &generator)
        let base = raw.matrix(rows: 0 ..< index.count)
        let queries = base.gathering(rows)
        let selfIDs = rows.map { index.externalIDs[$0] }
        let truth = exactNeighbours(queries: queries, base: base, ids: index.externalIDs, excluding: selfIDs,
                                    metric: index.configuration.metric, k: k, threads: threads)
        return Sample(queries: queries, selfIDs: selfIDs, truth: truth, k: k)
    }

    /// Search defaults a coordinator can calibrate without the lists: an index of `rows` (raw,
    /// unprepared rows of the data, such as a training sample; a uniform subset of at most
    /// `maxRows` of them is indexed) on `model`, sample queries drawn from those rows, their exact
    /// neighbours among them, and one calibration per target (ascending). The re-rank depths
    /// hold for an index of `indexed` rows: scale them to the collection
    /// (`Settings.scaled(fromRows:toRows:)`).
    public static func calibrate(model: IVFModel, rows: Matrix, targets: [Double], k: Int = 10, maxRows: Int,
                                 queries: Int, seed: UInt64 = 7, threads: Int = 1) throws(IndexError) -> (indexed: Int, levels: [Settings]) {
        guard rows.rows > k + 1 else {
            throw .invalidParameter("calibration needs more than \(k + 1) rows, got \(rows.rows)")
        }
        var generator = SeededGenerator(seed: seed)
        let kept = rows.rows <= maxRows ? rows : rows.gathering(uniformSample(population: rows.rows, sampleSize: maxRows, generator: &generator).sorted())
        let ids = (0 ..< Int64(kept.rows)).map { $0 }
        var index = IVFIndex(model: model)
        try index.add(kept, ids: ids, threads: threads)
        var prepared = kept
        model.prepare(&prepared)
        let picked = uniformSample(population: kept.rows, sampleSize: min(queries, kept.rows), generator: &generator)
        let selfIDs = picked.map(Int64.init)
        let sampleQueries = prepared.gathering(picked)
        let truth = exactNeighbours(queries: sampleQueries, base: prepared, ids: ids,
                                    excluding: selfIDs, metric: model.configuration.metric, k: k, threads: threads)
        let sample = Sample(queries: sampleQueries, selfIDs: selfIDs, truth: truth, k: k)
        var levels = targets.sorted().map { calibrate(index, sample: sample, target: $0, threads: threads) }
        // How the depth grows with the rows: the same queries, each level's nprobe and target, on
        // a quarter of the rows (holding the queries). Where a quarter is too small to tell, the
        // growth stays proportional.
        let quarter = kept.rows / 4
        if quarter >= minimumGrowthRows, quarter > picked.count + k {
            let chosen = Set(picked)
            var others = (0 ..< kept.rows).filter { !chosen.contains($0) }
            others.shuffle(using: &generator)
            let smallRows = (picked + others.prefix(quarter - picked.count)).sorted()
            var small = IVFIndex(model: model)
            let smallIDs = smallRows.map(Int64.init)
            try small.add(kept.gathering(smallRows), ids: smallIDs, threads: threads)
            let smallTruth = exactNeighbours(queries: sampleQueries, base: prepared.gathering(smallRows), ids: smallIDs,
                                             excluding: selfIDs, metric: model.configuration.metric, k: k, threads: threads)
            let smallSample = Sample(queries: sampleQueries, selfIDs: selfIDs, truth: smallTruth, k: k)
            var unmeasured: [Int] = []
            for i in levels.indices where levels[i].reached && levels[i].reorderK > 0 {
                guard let smallDepth = smallestDepth(small, sample: smallSample, nprobe: levels[i].nprobe, target: levels[i].target,
                                                     threads: threads) else {
                    unmeasured.append(i)
                    continue
                }
                levels[i].depthGrowth = growthExponent(depth: levels[i].reorderK, rows: kept.rows,
                                                       smallDepth: smallDepth, smallRows: smallRows.count)
            }
            // A level the sparser index cannot reach at its nprobe (its lists hold a quarter of
            // the rows) says nothing about depth: it takes the steepest growth measured, else 1.
            let steepest = levels.compactMap(\.depthGrowth).max() ?? 1
            for i in unmeasured { levels[i].depthGrowth = steepest }
        }
        return (kept.rows, levels)
    }

    /// A quarter of the indexed rows smaller than this leaves the depth's growth proportional.
    static let minimumGrowthRows = 2_000

    /// The exponent α of depth ∝ rowsᵅ through two measurements, clamped to [0.5, 1]: below ½
    /// the ladder's coarse steps and the sample's noise decide more than the data, and growth
    /// beyond proportional was never seen. No depth on the smaller index (nil) means 1.
    static func growthExponent(depth: Int, rows: Int, smallDepth: Int?, smallRows: Int) -> Double {
        guard let smallDepth, smallDepth > 0, rows > smallRows else { return 1 }
        let measured = log(Double(depth) / Double(smallDepth)) / log(Double(rows) / Double(smallRows))
        return min(1, max(0.5, measured))
    }

    /// The smallest depth on the ladder reaching `target` at `nprobe` (nil if none does).
    static func smallestDepth(_ index: IVFIndex, sample: Sample, nprobe: Int, target: Double, maxDepthFactor: Int = 64,
                              threads: Int = 1) -> Int? {
        let askedK = sample.k + (sample.selfIDs.contains { $0 >= 0 } ? 1 : 0)
        let depths = depthLadder(k: askedK).filter { $0 <= maxDepthFactor * askedK }
        func reaches(_ depth: Int) -> Bool {
            let parameters = SearchParameters(k: askedK, nprobe: min(nprobe, index.model.nlist), reorderK: depth)
            guard let results = try? index.search(sample.queries, parameters: parameters, threads: threads) else { return false }
            return recall(results, sample: sample) >= target
        }
        guard let last = depths.last, reaches(last) else { return nil }
        var low = 0, high = depths.count - 1
        while low < high {
            let middle = (low + high) / 2
            if reaches(depths[middle]) { high = middle } else { low = middle + 1 }
        }
        return depths[low]
    }

    /// The exact k nearest of each prepared query among prepared `base` rows (external `ids`),
    /// skipping `excluding[q]` for query q: a blocked GEMM over the whole base.
    public static func exactNeighbours(queries: Matrix, base: Matrix, ids: [Int64], excluding: [Int64], metric: Metric,
                                       k: Int, threads: Int = 1) -> [Int64] {
        precondition(base.rows == ids.count && excluding.count == queries.rows && queries.dimension == base.dimension)
        let d = base.dimension
        let norms = metric.usesInnerProduct ? [] : Kernels.squaredNorms(base)
        var truth = [Int64](repeating: -1, count: queries.rows * k)
        let baseBlock = 4096
        truth.withUnsafeMutableBufferPointer { out in
            let output = UncheckedSendable(out.baseAddress!)
            queries.values.withUnsafeBufferPointer { q in
                base.values.withUnsafeBufferPointer { b in
                    parallelFor(count: queries.rows, threads: threads, chunk: 32) { range, _ in
                        let scores = UnsafeMutablePointer<Float>.allocate(capacity: range.count * baseBlock)
                        defer { scores.deallocate() }
                        let heaps = TopKArray(count: range.count, capacity: k + 1)
                        var start = 0
                        while start < base.rows {
                            let block = min(baseBlock, base.rows - start)
                            quiver_inner_products(q.baseAddress! + range.lowerBound * d, range.count,
                                                  b.baseAddress! + start * d, block, d, scores, block)
                            for local in 0 ..< range.count {
                                let line = scores + local * block
                                var threshold = heaps.threshold(local)
                                for i in 0 ..< block {
                                    // L2 without the query's norm ranks the same.
                                    let distance = metric.usesInnerProduct ? -line[i] : norms[start + i] - 2 * line[i]
                                    if distance <= threshold {
                                        heaps.push(local, distance: distance, id: ids[start + i])
                                        threshold = heaps.threshold(local)
                                    }
                                }
                            }
                            start += block
                        }
                        var distances = [Float](repeating: 0, count: k + 1)
                        var found = [Int64](repeating: -1, count: k + 1)
                        for (local, query) in range.enumerated() {
                            heaps.drainSorted(local, into: &distances, &found, slots: k + 1)
                            let kept = found.filter { $0 != excluding[query] }.prefix(k)
                            for (slot, id) in kept.enumerated() { output.value[query * k + slot] = id }
                        }
                    }
                }
            }
        }
        return truth
    }

    /// recall@k of `results` (searched for k + 1 when queries are their own neighbours) against
    /// the sample's truth.
    public static func recall(_ results: SearchResults, sample: Sample) -> Double {
        var hits = 0
        for query in 0 ..< sample.queries.rows {
            let expected = Set(sample.truth[query * sample.k ..< (query + 1) * sample.k].filter { $0 >= 0 })
            let found = results.ids(ofQuery: query).filter { $0 >= 0 && $0 != sample.selfIDs[query] }.prefix(sample.k)
            hits += found.filter { expected.contains($0) }.count
        }
        return Double(hits) / Double(max(1, sample.queries.rows * sample.k))
    }

    /// The cheapest settings reaching `target` recall@k on the sample.
    ///
    /// Recall grows with both nprobe and the re-rank depth, so for each nprobe of a geometric
    /// ladder the smallest sufficient depth (up to `maxDepthFactor`·k) is found by galloping up
    /// a depth ladder and bisecting, and the cost of that pair is measured (CPU time per query,
    /// best of `repeats`). The nprobe ladder climbs while the cost falls or the target is not
    /// yet met, and stops once two steps in a row cost more than the best found. Without raw
    /// vectors only nprobe is searched.
    public static func calibrate(_ index: IVFIndex, sample: Sample, target: Double, maxDepthFactor: Int = 64,
                                 repeats: Int = 2, threads: Int = 1) -> Settings {
        let k = sample.k
        // Queries drawn from the data are their own nearest neighbour: ask for one more.
        let selfQueries = sample.selfIDs.contains { $0 >= 0 }
        let askedK = k + (selfQueries ? 1 : 0)
        let reranks = index.rawVectors.precision != .none && index.configuration.encoding != .flat
        let probes = ladder(upTo: index.model.nlist)
        let depths = reranks ? [0] + depthLadder(k: askedK).filter { $0 <= maxDepthFactor * askedK } : [0]
        var cache: [Int: (recall: Double, seconds: Double)] = [:]
        func measure(_ parameters: SearchParameters, timed: Bool) -> (recall: Double, seconds: Double) {
            let key = parameters.nprobe << 20 | parameters.reorderK
            if let known = cache[key], !timed || known.seconds.isFinite { return known }
            var best = Double.infinity
            var recallValue = 0.0
            for _ in 0 ..< (timed ? max(1, repeats) : 1) {
                let start = cpuSeconds()
                let results = (try? index.search(sample.queries, parameters: parameters, threads: threads))
                    ?? SearchResults(queryCount: sample.queries.rows, k: parameters.k)
                best = min(best, cpuSeconds() - start)
                recallValue = recall(results, sample: sample)
            }
            let value = (recall: recallValue, seconds: timed ? best / Double(max(1, sample.queries.rows)) : .infinity)
            cache[key] = value
            return value
        }
        func parameters(_ nprobe: Int, _ depth: Int) -> SearchParameters {
            SearchParameters(k: askedK, nprobe: nprobe, reorderK: depth)
        }

        var best: Settings?
        var reaching: [Settings] = []
        var mostAccurate: Settings?
        var worseSteps = 0
        for nprobe in probes {
            // The smallest depth on the ladder that reaches the target at this nprobe: gallop up
            // from the cheapest (deep re-ranks are the costly searches), then bisect.
            var failing = -1, passing = -1
            var step = 1
            var probe = 0
            while probe < depths.count {
                if measure(parameters(nprobe, depths[probe]), timed: false).recall >= target {
                    passing = probe
                    break
                }
                failing = probe
                if probe == depths.count - 1 { break }
                probe = min(depths.count - 1, probe + step)
                step *= 2
            }
            guard passing >= 0 else {
                let deepest = measure(parameters(nprobe, depths[depths.count - 1]), timed: false)
                if mostAccurate == nil || deepest.recall > mostAccurate!.sampleRecall {
                    mostAccurate = Settings(nprobe: nprobe, reorderK: depths[depths.count - 1], k: k, target: target,
                                            sampleRecall: deepest.recall, secondsPerQuery: .infinity,
                                            sampleQueries: sample.queries.rows, reached: false)
                }
                continue
            }
            var low = failing + 1, high = passing
            while low < high {
                let middle = (low + high) / 2
                if measure(parameters(nprobe, depths[middle]), timed: false).recall >= target { high = middle } else { low = middle + 1 }
            }
            let found = measure(parameters(nprobe, depths[low]), timed: true)
            let candidate = Settings(nprobe: nprobe, reorderK: depths[low], k: k, target: target, sampleRecall: found.recall,
                                     secondsPerQuery: found.seconds, sampleQueries: sample.queries.rows, reached: true)
            reaching.append(candidate)
            if best == nil || candidate.secondsPerQuery < best!.secondsPerQuery {
                best = candidate
                worseSteps = 0
            } else {
                worseSteps += 1
                if worseSteps >= 2 { break }
            }
        }
        // Timings drift on a shared machine: time the candidates again, interleaved, so that a
        // slow moment does not decide between two of them, and keep each one's best.
        if reaching.count > 1 {
            for _ in 0 ..< max(1, repeats) {
                for i in reaching.indices {
                    let start = cpuSeconds()
                    _ = try? index.search(sample.queries, parameters: parameters(reaching[i].nprobe, reaching[i].reorderK), threads: threads)
                    reaching[i].secondsPerQuery = min(reaching[i].secondsPerQuery, (cpuSeconds() - start) / Double(max(1, sample.queries.rows)))
                }
            }
            best = reaching.min { $0.secondsPerQuery < $1.secondsPerQuery }
        }
        return best ?? mostAccurate ?? Settings(nprobe: index.model.nlist, reorderK: depths.last!, k: k, target: target,
                                                sampleRecall: 0, secondsPerQuery: .infinity, sampleQueries: sample.queries.rows,
                                                reached: false)
    }

    /// 1, 2, 3, 4, 6, 8, 12, 16, 24, … up to `limit` (and `limit` itself).
    static func ladder(upTo limit: Int) -> [Int] {
        var values: [Int] = []
        var power = 1
        while power <= limit {
            values.append(power)
            if power * 3 / 2 > power, power * 3 / 2 <= limit, power >= 2 { values.append(power * 3 / 2) }
            power *= 2
        }
        if values.last != limit { values.append(limit) }
        return Array(Set(values)).sorted()
    }

    /// Re-rank depths worth trying for k results: k × 1.5, 2, 2.5, 3, 3.5, 4, 5, 6, 7, 8, 10, …
    /// (four steps per doubling) up to 100,000.
    static func depthLadder(k: Int) -> [Int] {
        var depths: [Int] = []
        var octave = 1.0
        while true {
            for step in [1.0, 1.25, 1.5, 1.75] {
                let depth = Int((Double(k) * octave * step).rounded(.up))
                if depth > 100_000 { return depths }
                if depth > k && depth != depths.last { depths.append(depth) }
            }
            octave *= 2
        }
    }

    static func cpuSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}

