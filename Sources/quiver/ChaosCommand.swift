import ArgumentParser
import Foundation
import QuiverClient
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import Synchronization

/// `quiver chaos`: a real local cluster under steady query and load traffic while workers are
/// killed, restarted and wiped and the coordinator is restarted — never more than R − 1 replicas
/// of a list down at once — then every acknowledged vector is checked by an exact self-query.
/// Bounded in time and in rows; exits non-zero when a promise was broken.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Kill, restart and wipe workers and restart the coordinator under load and queries, then check every acknowledged vector.")

    @Option(help: "Workers in the cluster.") var workers = 3
    @Option(help: "Replicas of each list.") var replication = 2
    @Option(help: "Seconds of faults and traffic.") var seconds = 60.0
    @Option(help: "Rows loaded at most during the run (in batches, each acknowledged or not).") var rows = 20_000
    @Option(help: "Rows per load batch.") var batch = 250
    @Option(help: "Vector dimension of the synthetic data.") var dimension = 32
    @Option(help: "Seconds between faults.") var faultEvery = 3.0
    @Option(help: "Random seed (faults and data).") var seed: UInt64 = 1
    @Option(help: "Keep the cluster folder (logs, data) here instead of a temporary one.") var keep: String?

    struct Counts: Sendable {
        var queries = 0, failedQueries = 0, partialQueries = 0, completeButMissing = 0
        var batchesSent = 0, batchesAcknowledged = 0, batchesRefused = 0
        var faults: [String] = []
        var repairSeconds: [Double] = []
        var unrepaired = 0
    }

    /// How long the cluster may take to serve every replica again after a fault.
    static let repairLimit: Duration = .seconds(120)

    func run() async throws {
        guard workers >= replication, replication >= 1 else { throw ValidationError("need at least --replication workers") }
        let (dimension, batchRows, seed, replication, workers, seconds, faultEvery) = (dimension, batch, seed, replication, workers, seconds, faultEvery)
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let root = keep.map { URL(fileURLWithPath: absolutePath($0)) }
        let cluster = try LocalCluster(binary: binary, workers: workers, root: root,
                                       coordinatorArguments: ["--heartbeat-interval", "0.25", "--dead-after", "3600"])
        defer { cluster.shutdown() }
        var generator = SeededGenerator(seed: seed)
        let data = Self.clusteredUnitVectors(rows: rows, dimension: dimension, generator: &generator)
        let sampleRows = min(rows, 4000)
        try writeNpy(path: cluster.importRoot.appendingPathComponent("train.npy").path, rows: sampleRows, dimension: dimension,
                     values: Array(data.values[..<(sampleRows * dimension)]))
        let nlist = max(8, Int(2 * Double(rows).squareRoot() / 4))
        try await cluster.client { client in
            var settings = CollectionSettings(name: "chaos", dimension: dimension, metric: .innerProduct)
            settings.nlist = nlist
            settings.replicationFactor = replication
            _ = try await client.createCollection(settings)
            _ = try await client.train("chaos", fromFile: cluster.importRoot.appendingPathComponent("train.npy").path)
        }
        print("chaos: \(workers) workers, replication \(replication) (write quorum \(replication / 2 + 1)), nlist \(nlist), "
            + "\(rows) rows of \(dimension) dimensions, \(Int(seconds)) s, a fault every \(faultEvery) s")

        let shared = Shared()
        let started = ContinuousClock.now
        let deadline = started + .milliseconds(Int64(seconds * 1000))

        // Load traffic, spread over the run: batches of caller ids (the row numbers); a batch counts
        // only once acknowledged.
        let pace = Duration.milliseconds(Int64(seconds * 900 / Double(max(1, (rows + batchRows - 1) / batchRows))))
        let loader = Task {
            var next = 0
            while next < data.rows && ContinuousClock.now < deadline {
                let batchStarted = ContinuousClock.now
                let range = next ..< min(data.rows, next + batchRows)
                shared.counts.withLock { $0.batchesSent += 1 }
                do {
                    try await cluster.client(timeout: .seconds(30)) { client in
                        try await client.load("chaos", vectors: Array(data.values[range.lowerBound * dimension ..< range.upperBound * dimension]),
                                              dimension: dimension, ids: range.map(Int64.init), batchRows: batchRows,
                                              loadID: "chaos-\(range.lowerBound)", retries: 3)
                    }
                    shared.acknowledged.withLock { $0 += Array(range) }
                    shared.counts.withLock { $0.batchesAcknowledged += 1 }
                    next = range.upperBound
                    let rest = pace - batchStarted.duration(to: .now)
                    if rest > .zero { try? await Task.sleep(for: rest) }
                } catch {
                    // Not acknowledged (a worker of its lists is down): sent again later, same ids.
                    shared.counts.withLock { $0.batchesRefused += 1 }
                    try? await Task.sleep(for: .milliseconds(300))
                }
            }
        }
        // Query traffic: acknowledged rows searched by their own vectors.
        let querier = Task {
            var local = SeededGenerator(seed: seed &+ 7)
            while ContinuousClock.now < deadline && !shared.stop.load(ordering: .relaxed) {
                let known = shared.acknowledged.withLock { $0 }
                guard !known.isEmpty else {
                    try? await Task.sleep(for: .milliseconds(50))
                    continue
                }
                let picks = (0 ..< 8).map { _ in known[Int.random(in: 0 ..< known.count, using: &local)] }
                let queries = picks.flatMap { Array(data.values[$0 * dimension ..< ($0 + 1) * dimension]) }
                var answered = false
                for _ in 0 ..< 5 where !answered {
                    do {
                        let hits = try await cluster.client(timeout: .seconds(10)) { client in
                            try await client.search("chaos", queries: queries, dimension: dimension, k: 10, nprobe: nlist, reorderK: 2000)
                        }
                        answered = true
                        let missing = picks.indices.filter { !hits.ids(ofQuery: $0).contains(Int64(picks[$0])) }.count
                        shared.counts.withLock {
                            $0.queries += picks.count
                            if hits.coverage < 1 { $0.partialQueries += picks.count } else { $0.completeButMissing += missing }
                        }
                    } catch {
                        try? await Task.sleep(for: .milliseconds(200))
                    }
                }
                if !answered { shared.counts.withLock { $0.failedQueries += picks.count } }
            }
        }
        // Faults: one at a time, the next only once every replica serves again.
        var faults = SeededGenerator(seed: seed &+ 13)
        while ContinuousClock.now + .milliseconds(Int64(faultEvery * 1000)) < deadline {
            try await Task.sleep(for: .milliseconds(Int64(faultEvery * 1000)))
            let worker = Int.random(in: 0 ..< workers, using: &faults)
            let kind = Int.random(in: 0 ..< 4, using: &faults)
            let fault: String
            switch kind {
            case 0:
                fault = "kill -9 worker \(worker), restart"
                cluster.workers[worker].crash()
                try await Task.sleep(for: .milliseconds(Int64(faultEvery * 300)))
                try cluster.startAgain(worker)
            case 1:
                fault = "kill -9 worker \(worker), wipe its data, restart"
                cluster.workers[worker].crash()
                try await Task.sleep(for: .milliseconds(Int64(faultEvery * 300)))
                try cluster.startAgain(worker, wipe: true)
            case 2:
                fault = "stop worker \(worker) (SIGTERM), restart"
                try cluster.restartWorker(worker)
            default:
                fault = "kill -9 the coordinator, restart"
                try cluster.restartCoordinator(crash: true)
            }
            let faultTime = ContinuousClock.now
            shared.counts.withLock { $0.faults.append(fault) }
            print("chaos: \(String(format: "%5.1f", Self.seconds(started.duration(to: .now)))) s  \(fault)")
            // No second fault while a replica is still behind: at most R − 1 down per list.
            let repaired = try await Self.waitRepaired(cluster, limit: Self.repairLimit)
            shared.counts.withLock { $0.repairSeconds.append(Self.seconds(faultTime.duration(to: .now))) }
            if !repaired {
                // Another fault now could take a list's last serving replica: stop injecting.
                print("chaos: replicas still behind \(Self.repairLimit) after the fault; no more faults")
                shared.counts.withLock { $0.unrepaired += 1 }
                break
            }
        }
        await loader.value
        shared.stop.store(true, ordering: .relaxed)
        await querier.value
        if !(try await Self.waitRepaired(cluster, limit: Self.repairLimit)) {
            print("chaos: replicas still behind \(Self.repairLimit) after the traffic stopped")
            shared.counts.withLock { $0.unrepaired += 1 }
        }

        // Every acknowledged vector, searched exactly (all lists, deep re-rank), must find itself, once.
        let verified = shared.acknowledged.withLock { $0 }.sorted()
        var lost = 0
        var duplicated = 0
        var position = 0
        while position < verified.count {
            let slice = Array(verified[position ..< min(verified.count, position + 200)])
            let queries = slice.flatMap { Array(data.values[$0 * dimension ..< ($0 + 1) * dimension]) }
            let hits = try await cluster.client(timeout: .seconds(120)) { client in
                try await client.search("chaos", queries: queries, dimension: dimension, k: 10, nprobe: nlist, reorderK: 8000,
                                        requireFullCoverage: true)
            }
            for (index, row) in slice.enumerated() {
                let found = hits.ids(ofQuery: index).filter { $0 == Int64(row) }.count
                if found == 0 { lost += 1 }
                if found > 1 { duplicated += 1 }
            }
            position += slice.count
        }
        let stored = try await cluster.client { try await $0.describeCollection("chaos").vectorCount }
        let final = shared.counts.withLock { $0 }
        let repairs = final.repairSeconds.sorted()
        print("""
            chaos: \(final.faults.count) faults in \(Int(seconds)) s
              queries sent \(final.queries), failed \(final.failedQueries), partial (reported as partial) \(final.partialQueries), \
            complete but missing the row \(final.completeButMissing)
              load batches sent \(final.batchesSent), acknowledged \(final.batchesAcknowledged), refused \(final.batchesRefused)
              vectors acknowledged \(verified.count), lost \(lost), duplicated \(duplicated); the collection counts \(stored)
              repair time after a fault: median \(String(format: "%.1f", repairs.isEmpty ? 0 : repairs[repairs.count / 2])) s, \
            max \(String(format: "%.1f", repairs.last ?? 0)) s
            """)
        if final.unrepaired > 0 { print("  a fault was not repaired within \(Self.repairLimit)") }
        let broken = final.unrepaired > 0 || final.failedQueries > 0 || final.completeButMissing > 0 || lost > 0 || duplicated > 0 || stored != UInt64(verified.count)
        if broken {
            print("chaos: FAILED (logs under \(cluster.root.path))")
            throw ExitCode.failure
        }
        print("chaos: OK")
    }

    /// What the traffic tasks and the fault loop share.
    final class Shared: Sendable {
        let counts = Mutex(Counts())
        let acknowledged = Mutex<[Int]>([])
        let stop = Atomic<Bool>(false)
    }

    /// Waits until every worker is healthy and no list replica is behind; false after `limit`.
    /// Waits until every worker is healthy with no replica behind, and stays so for two seconds
    /// (the coordinator notices a restarted or wiped worker on a heartbeat after it answers).
    static func waitRepaired(_ cluster: LocalCluster, limit: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        var since: ContinuousClock.Instant?
        while ContinuousClock.now < deadline {
            let status = try? await cluster.client(timeout: .seconds(5)) { try await $0.clusterStatus() }
            if let status, status.unhealthyReplicas.isEmpty, status.workers.allSatisfy({ $0.health == .healthy }) {
                if let since, since.duration(to: .now) >= .seconds(2) { return true }
                since = since ?? .now
            } else {
                since = nil
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }

    /// Unit vectors around 24 random centres (what text embeddings look like, in miniature).
    static func clusteredUnitVectors(rows: Int, dimension: Int, generator: inout SeededGenerator) -> Matrix {
        let centers = (0 ..< 24 * dimension).map { _ in Float.random(in: -1 ... 1, using: &generator) }
        var values = [Float]()
        values.reserveCapacity(rows * dimension)
        for _ in 0 ..< rows {
            let c = Int.random(in: 0 ..< 24, using: &generator)
            for j in 0 ..< dimension { values.append(centers[c * dimension + j] + Float.random(in: -0.5 ... 0.5, using: &generator)) }
        }
        var matrix = Matrix(rows: rows, dimension: dimension, values: values)
        matrix.normalizeRows()
        return matrix
    }
}

/// Progress lines reach a pipe or a log file as they happen, not when a buffer fills.
fileprivate func print(_ line: String) {
    Swift.print(line)
    fflush(nil)
}
