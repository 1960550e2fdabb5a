import ArgumentParser
import Foundation
import QuiverIndex
import QuiverStorage

/// `quiver bench`: builds indexes on a data folder (`base.npy`, `queries.npy`, `groundtruth.npy`),
/// sweeps search settings and prints recall@k, QPS, latency, memory and build time — and, with
/// `--peers`, runs the peer libraries on the same data in the same run and reports the ratios.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure recall, QPS, latency and memory on a data folder, optionally beside faiss/ScaNN/hnswlib.")

    @Option(help: "Folder holding base.npy, queries.npy and groundtruth.npy (top ids by the metric).")
    var data: String = ""
    @Flag(help: "Time the C kernels (GEMM, FastScan per ISA, top-k heap, PQ encoding, re-ranking) instead; no data needed.")
    var kernels = false
    @Option(help: "Neighbours per query.")
    var k = 10
    @Option(help: "Search and build threads.")
    var threads = 1
    @Option(help: "Inverted lists (default 2·√n, as peers.py uses).")
    var nlist: Int?
    @Option(help: "Comma-separated nprobe values to sweep.")
    var nprobe: IntegerList?
    @Option(help: "Comma-separated re-ranking depths to sweep (0 = no re-ranking).")
    var reorder: IntegerList?
    @Option(help: "Comma-separated index kinds: \(IndexKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var index = "fastscan"
    @Option(help: "ip, l2 or cosine (the ground truth must use the same).")
    var metric: Metric = .innerProduct
    @Option(help: "PQ subspaces m (default d/2 for fastscan, d/4 for ivfpq).")
    var m: Int?
    @Option(help: "Anisotropic threshold as a fraction of each vector's norm (0 < T < 1), or off (default 0.1 for ip/cosine, off for l2).")
    var anisotropic: OptionalNumber?
    @Option(help: "SOAR spilling lambda, or off (default 1 for ip/cosine, off for l2).")
    var spill: OptionalNumber?
    @Option(help: "k-means iterations for the coarse centroids and the codebooks (default \(IVFConfiguration.defaultTrainingIterations)).")
    var iterations: Int?
    @Option(help: "Raw vectors kept for re-ranking: float32, float16 or none (default: chosen from the data as a collection does, float16 unless the data needs float32).")
    var raw: RawVectorPrecision?
    @Option(help: "Queries timed one at a time for latency.")
    var latencyQueries = 1000
    @Option(help: "Timed repetitions of each batch; the best is kept (as peers.py does).")
    var repeats = 3
    @Option(help: "Use only the first N queries.")
    var maxQueries: Int?
    @Option(help: "Training seed.")
    var seed: UInt64 = 1
    @Option(help: "Comma-separated recall@k targets: calibrate nprobe and re-rank depth for each from sample queries drawn from the base, then measure them on the real queries beside the sweep's best setting.")
    var recall: DoubleList?
    @Option(help: "Sample queries drawn from the base for calibration.")
    var calibrationQueries = 1000
    @Option(help: "Calibrate on an index of this many base rows (what a coordinator holding a sample can do) instead of the full index; re-rank depths are scaled to the full size.")
    var calibrationRows: Int?
    @Option(help: "Reuse the index saved in this file when its configuration matches (else build and save it there): repeated runs skip the build.")
    var indexFile: String?
    @Option(help: "Write all rows (Quiver's and the peers') as JSON to this file.")
    var json: String?
    @Flag(help: "Also run peers.py (faiss, ScaNN, hnswlib) on the same data, same threads, same run.")
    var peers = false
    @Option(help: "peers.py to run (default: ../shared/tools/peers.py, then shared/tools/peers.py).")
    var peersScript: String?
    @Option(help: "Python with the peers installed (default: $QUIVER_PYTHON, .venv-peers/bin/python, python3).")
    var python: String?
    @Option(help: "Peers to run (peers.py --only).")
    var peersOnly = "faiss,scann"

    func validate() throws {
        guard k > 0 else { throw ValidationError("--k must be positive") }
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
        for name in index.split(separator: ",") where IndexKind(rawValue: String(name)) == nil {
            throw ValidationError("unknown index kind '\(name)'; expected one of \(IndexKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        if kernels { return KernelBench.run() }
        guard !data.isEmpty else { throw ValidationError("--data is required (or --kernels)") }
        let workload = try Workload.load(folder: data, maxQueries: maxQueries, k: k)
        emit("# data \(data): n=\(workload.base.rows) d=\(workload.base.dimension) queries=\(workload.queries.rows) metric=\(metric.rawValue) threads=\(threads) cpu=\(Kernels.bestISAName)")
        let lists = nlist ?? IVFConfiguration.defaultListCount(vectors: workload.base.rows)
        var rows: [BenchRow] = []
        emit(BenchRow.header)
        for name in index.split(separator: ",") {
            let kind = IndexKind(rawValue: String(name))!
            let measured = try benchmark(kind, workload: workload, nlist: lists)
            rows.append(contentsOf: measured)
        }
        var peerRows: [PeerRow] = []
        if peers {
            peerRows = try PeerRunner(script: peersScript, python: python).run(data: data, threads: threads, nlist: lists, only: peersOnly)
        }
        printSummary(rows: rows, peerRows: peerRows)
        if let json {
            let document = BenchReport(quiver: rows, peers: peerRows, threads: threads, nlist: lists, data: data)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(document).write(to: URL(fileURLWithPath: json))
            emit("# wrote \(json)")
        }
    }

    private func benchmark(_ kind: IndexKind, workload: Workload, nlist: Int) throws -> [BenchRow] {
        let queries = workload.queries
        var rows: [BenchRow] = []
        let buildStart = ContinuousClock.now
        guard let encoding = kind.encoding else {
            var flat = FlatIndex(dimension: workload.base.dimension, metric: metric)
            try flat.add(workload.base)
            let build = seconds(since: buildStart)
            let (results, qps) = try timeBatch { try flat.search(queries, k: k, threads: threads) }
            let cpuQPS = lastCPUQPS
            let latencies = try timeSingles { try flat.search($0, k: k, threads: 1) }
            rows.append(BenchRow(index: kind.rawValue, params: "exact", recall: results.recall(against: workload.truth, truthColumns: workload.truthColumns),
                                 qps: qps, latency: latencies, bytesPerVector: Double(flat.memoryBytes) / Double(flat.count), buildSeconds: build,
                                 cpuQPS: cpuQPS))
            emit(rows.last!.line)
            return rows
        }
        let innerProduct = metric.usesInnerProduct
        let configuration = IVFConfiguration(
            dimension: workload.base.dimension, metric: metric, nlist: nlist, encoding: encoding, subspaces: m,
            anisotropicThreshold: encoding == .flat || !innerProduct ? nil : (anisotropic.map(\.value) ?? IVFConfiguration.defaultAnisotropicThreshold),
            spillLambda: encoding == .flat || !innerProduct ? spill?.value : (spill.map(\.value) ?? 1.0),
            rawVectors: raw ?? RawVectorPrecision.automatic(for: workload.base, metric: metric),
            trainingIterations: iterations ?? IVFConfiguration.defaultTrainingIterations, seed: seed)
        var trained = 0.0, build = 0.0
        var ivf: IVFIndex
        if let indexFile, let saved = try? IndexFile.load(path: indexFile), saved.configuration == configuration, saved.count == workload.base.rows {
            ivf = saved
            emit("# \(kind.rawValue): index loaded from \(indexFile) (build times below are 0)")
        } else {
            let model = try IVFModel.train(sample: workload.base, configuration: configuration, threads: threads)
            trained = seconds(since: buildStart)
            ivf = IVFIndex(model: model)
            try ivf.add(workload.base, threads: threads)
            build = seconds(since: buildStart)
            if let indexFile { try IndexFile.save(ivf, to: indexFile) }
        }
        let describe = "nlist=\(nlist) m=\(configuration.subspaces) aniso=\(configuration.anisotropicThreshold.map { "\($0)" } ?? "off") spill=\(configuration.spillLambda.map { "\($0)" } ?? "off") raw=\(configuration.rawVectors.rawValue)"
        emit("# \(kind.rawValue): \(describe) train \(String(format: "%.1f", trained)) s, build \(String(format: "%.1f", build)) s, entries \(ivf.entryCount), \(String(format: "%.1f", Double(ivf.memoryBytes) / Double(ivf.count))) B/vector")

        defer { if let recall { calibrationRows(for: recall.values, index: ivf, workload: workload, sweep: rows).forEach { emit($0) } } }
        let probes = nprobe?.values ?? [2, 4, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128]
        let depths = encoding == .flat || configuration.rawVectors == .none ? [0] : (reorder?.values ?? [0, 10, 20, 30, 40, 60, 100])
        for probe in probes where probe > 0 && probe <= nlist {
            for depth in depths {
                let parameters = SearchParameters(k: k, nprobe: probe, reorderK: depth)
                let (results, qps) = try timeBatch { try ivf.search(queries, parameters: parameters, threads: threads) }
                let latencies = try timeSingles { try ivf.search($0, parameters: parameters, threads: 1) }
                // Memory without raw vectors when they are not used by this setting.
                let bytes = depth == 0 && encoding != .flat ? ivf.memoryBytes - ivf.rawVectors.memoryBytes : ivf.memoryBytes
                let row = BenchRow(index: kind.rawValue, params: "nprobe=\(probe) reorder=\(depth) \(describe)",
                                   recall: results.recall(against: workload.truth, truthColumns: workload.truthColumns),
                                   qps: qps, latency: latencies, bytesPerVector: Double(bytes) / Double(ivf.count), buildSeconds: build,
                                   nprobe: probe, reorderK: depth, cpuQPS: lastCPUQPS)
                rows.append(row)
                emit(row.line)
            }
        }
        return rows
    }

    /// Calibrates for each target and measures the chosen settings on the real queries, beside the
    /// sweep's fastest setting that reaches the recall the calibrated one reached.
    private func calibrationRows(for targets: [Double], index: IVFIndex, workload: Workload, sweep: [BenchRow]) -> [String] {
        var lines: [String] = []
        do {
            var calibrated = index
            var source = "the full index"
            if let calibrationRows, calibrationRows < index.count {
                var generator = SeededGenerator(seed: seed &+ 11)
                let picked = uniformSample(population: workload.base.rows, sampleSize: calibrationRows, generator: &generator)
                calibrated = IVFIndex(model: index.model)
                try calibrated.add(workload.base.gathering(picked), ids: picked.map(Int64.init), threads: threads)
                source = "an index of \(calibrationRows) sampled rows"
            }
            let start = ContinuousClock.now
            let sample = try Calibration.sample(from: calibrated, count: calibrationQueries, k: k, threads: threads)
            lines.append("# calibration on \(source): \(sample.queries.rows) sample queries drawn from the base, exact neighbours in \(String(format: "%.1f", seconds(since: start))) s")
            for target in targets {
                let calibrationStart = ContinuousClock.now
                var settings = Calibration.calibrate(calibrated, sample: sample, target: target, threads: threads)
                settings = settings.scaled(fromRows: calibrated.count, toRows: index.count)
                let took = seconds(since: calibrationStart)
                let (results, qps) = try timeBatch { try index.search(workload.queries, parameters: settings.parameters, threads: threads) }
                let cpuQPS = lastCPUQPS
                let achieved = results.recall(against: workload.truth, truthColumns: workload.truthColumns)
                var line = String(format: "calibrated@%.2f: nprobe=%d reorder=%d (sample recall %.4f, %.1f s) → queries: recall %.4f, %.0f QPS, %.0f CPU-QPS",
                                  target, settings.nprobe, settings.reorderK, settings.sampleRecall, took, achieved, qps, cpuQPS)
                if let best = sweep.filter({ $0.recall >= achieved }).max(by: { ($0.cpuQPS ?? $0.qps) < ($1.cpuQPS ?? $1.qps) }) {
                    line += String(format: "; best swept setting reaching it: %@ recall %.4f, %.0f CPU-QPS (calibrated/best %.2f)",
                                   best.params.split(separator: " ").prefix(2).joined(separator: " ") as NSString, best.recall,
                                   best.cpuQPS ?? best.qps, cpuQPS / (best.cpuQPS ?? best.qps))
                }
                lines.append(line)
            }
        } catch {
            lines.append("# calibration failed: \(error)")
        }
        return lines
    }

    private func timeBatch(_ body: () throws -> SearchResults) throws -> (SearchResults, Double) {
        var best = Double.infinity
        var bestCPU = Double.infinity
        var results: SearchResults?
        for _ in 0 ..< max(1, repeats) {
            let start = ContinuousClock.now
            let cpuStart = processCPUSeconds()
            results = try body()
            best = min(best, seconds(since: start))
            bestCPU = min(bestCPU, processCPUSeconds() - cpuStart)
        }
        lastCPUQPS = Double(results!.queryCount) / bestCPU
        return (results!, Double(results!.queryCount) / best)
    }

    private func timeSingles(_ body: (Matrix) throws -> SearchResults) throws -> LatencySummary {
        guard latencyQueries > 0 else { return LatencySummary(samples: []) }
        let queries = Workload.current!.queries
        var samples: [Double] = []
        for query in 0 ..< min(latencyQueries, queries.rows) {
            let single = Matrix(rows: 1, dimension: queries.dimension, values: Array(queries[query]))
            let start = ContinuousClock.now
            _ = try body(single)
            samples.append(seconds(since: start) * 1e6)
        }
        return LatencySummary(samples: samples)
    }

    private func printSummary(rows: [BenchRow], peerRows: [PeerRow]) {
        emit("# summary (threads=\(threads))")
        for target in [0.90, 0.95] {
            let ours = rows.filter { $0.recall >= target }.max { $0.qps < $1.qps }
            let label = String(format: "%.2f", target)
            if let ours {
                emit("best@\(label) quiver-\(ours.index): \(Int(ours.qps)) QPS (\(ours.params), recall \(String(format: "%.4f", ours.recall)))")
            } else {
                emit("best@\(label) quiver: not reached")
            }
            for peer in Set(peerRows.map(\.peer)).sorted() {
                guard let best = peerRows.filter({ $0.peer == peer && $0.recall >= target }).max(by: { $0.qps < $1.qps }) else {
                    emit("best@\(label) \(peer): not reached")
                    continue
                }
                let ratio = ours.map { String(format: " — quiver/peer = %.2fx", $0.qps / best.qps) } ?? ""
                emit("best@\(label) \(peer): \(Int(best.qps)) QPS (\(best.params), recall \(String(format: "%.4f", best.recall)))\(ratio)")
            }
        }
    }
}

/// Writes one line to standard output at once (unbuffered), so a benchmark's progress shows in a
/// log file while it runs, in order with the peers' output.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

/// Base vectors, queries and ground truth of one data folder.
struct Workload {
    nonisolated(unsafe) static var current: Workload?
    let base: Matrix
    let queries: Matrix
    let truth: [Int64]
    let truthColumns: Int

    static func load(folder: String, maxQueries: Int?, k: Int) throws -> Workload {
        let baseSet = try VectorDataset(pattern: folder + "/base*.npy")
        let base = Matrix(rows: baseSet.count, dimension: baseSet.dimension, values: try baseSet.readAll())
        let querySet = try VectorDataset(path: folder + "/queries.npy")
        var queryCount = querySet.count
        if let maxQueries { queryCount = min(queryCount, maxQueries) }
        let queries = Matrix(rows: queryCount, dimension: querySet.dimension, values: try querySet.readRows(0 ..< queryCount))
        let truth = try readIntegerMatrix(path: folder + "/groundtruth.npy")
        guard truth.rows >= queryCount, truth.columns >= k else {
            throw ValidationError("groundtruth.npy has \(truth.rows)x\(truth.columns) ids; need \(queryCount) queries with at least k=\(k) columns")
        }
        let workload = Workload(base: base, queries: queries, truth: Array(truth.values[0 ..< queryCount * truth.columns]), truthColumns: truth.columns)
        current = workload
        return workload
    }
}

struct LatencySummary: Codable {
    let meanMicroseconds: Double
    let p99Microseconds: Double

    init(samples: [Double]) {
        guard !samples.isEmpty else {
            meanMicroseconds = 0
            p99Microseconds = 0
            return
        }
        let sorted = samples.sorted()
        meanMicroseconds = samples.reduce(0, +) / Double(samples.count)
        p99Microseconds = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.99).rounded(.up)) - 1)]
    }
}

/// Queries per CPU-second of the last `timeBatch` (best repeat): on a shared machine the wall
/// clock also counts time other processes held the cores, CPU time does not.
nonisolated(unsafe) var lastCPUQPS = 0.0

/// User + system CPU seconds of this process so far.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
}

struct BenchRow: Codable {
    let index: String
    let params: String
    let recall: Double
    let qps: Double
    let latency: LatencySummary
    let bytesPerVector: Double
    let buildSeconds: Double
    var nprobe: Int? = nil
    var reorderK: Int? = nil
    /// Queries per CPU-second (threads × wall QPS when the machine is otherwise idle).
    var cpuQPS: Double? = nil

    static let header = "index      recall@k       QPS    CPU-QPS   mean µs    p99 µs  B/vec  build s  params"
    var line: String {
        String(format: "%-9@ %9.4f %9.0f %10.0f %9.1f %9.1f %6.1f %8.1f  %@", index as NSString, recall, qps, cpuQPS ?? 0,
               latency.meanMicroseconds, latency.p99Microseconds, bytesPerVector, buildSeconds, params as NSString)
    }
}

struct BenchReport: Codable {
    let quiver: [BenchRow]
    let peers: [PeerRow]
    let threads: Int
    let nlist: Int
    let data: String
}
