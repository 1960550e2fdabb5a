import Foundation
import GRPCCore
import QuiverClient
import QuiverIndex
import QuiverProtocol
import Testing

/// Replication under the faults clusters meet, with real processes: replicas down, killed,
/// wiped, retried loads, deletes, replacements and drains. The coordinator heartbeats every
/// 0.2 s here so repairs start at once.
@Suite(.serialized) struct ReplicationTests {
    static let fast = ["--heartbeat-interval", "0.2"]

    func cluster(workers: Int, deadAfter: Double = 3600) throws -> LocalCluster {
        try LocalCluster(binary: quiverBinary, workers: workers, coordinatorArguments: Self.fast + ["--dead-after", "\(deadAfter)"])
    }

    func create(_ client: QuiverClient, _ data: ClusterData, replication: Int, writeQuorum: Int = 0) async throws {
        var settings = CollectionSettings(name: "docs", dimension: data.dimension, metric: .innerProduct)
        settings.nlist = 12
        settings.replicationFactor = replication
        settings.writeQuorum = writeQuorum
        _ = try await client.createCollection(settings)
        _ = try await client.train("docs", fromFile: data.basePath)
    }

    /// Every stored row searched for by its own vector comes back first, with full coverage.
    func expectEveryRowFinds(itself rows: Range<Int>, in data: ClusterData, _ client: QuiverClient, idOffset: Int64 = 0,
                             sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let queries = Array(data.base.values[rows.lowerBound * data.dimension ..< rows.upperBound * data.dimension])
        let hits = try await client.search("docs", queries: queries, dimension: data.dimension, k: 10, nprobe: 12, reorderK: 200,
                                           requireFullCoverage: true)
        // Searched by its own vector, a row scores highest (unit vectors): it is among the top hits, once.
        let missing = rows.filter { !hits.ids(ofQuery: $0 - rows.lowerBound).contains(Int64($0) + idOffset) }.count
        #expect(missing == 0, "\(missing) of \(rows.count) rows do not find themselves", sourceLocation: sourceLocation)
        let doubled = rows.filter { row in hits.ids(ofQuery: row - rows.lowerBound).filter { $0 == Int64(row) + idOffset }.count > 1 }.count
        #expect(doubled == 0, "\(doubled) rows are stored twice", sourceLocation: sourceLocation)
        #expect(hits.coverage == 1, sourceLocation: sourceLocation)
    }

    /// `detail`, when given, is added to the issue recorded on a timeout (a process's log, say).
    func waitUntil(_ what: String, seconds: Double = 30, detail: (() -> String)? = nil,
                   sourceLocation: SourceLocation = #_sourceLocation,
                   _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        // Checked once more after the deadline: a test starved of CPU (the suite runs many
        // clusters at once) may wake past it to a condition that came true in time.
        while true {
            if try await condition() { return }
            if Date() >= deadline { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let extra: String = detail.map { "\n" + $0() } ?? ""
        Issue.record("not within \(seconds) s: \(what)\(extra)", sourceLocation: sourceLocation)
    }

    func behindCount(_ client: QuiverClient) async throws -> Int {
        try await client.clusterStatus().unhealthyReplicas.count
    }

    func health(_ client: QuiverClient, _ worker: ServerProcess) async throws -> Quiver_V1_WorkerHealth? {
        try await client.clusterStatus().workers.first { $0.address == worker.address.description }?.health
    }

    @Test func aWriteWithAReplicaDownIsAcknowledgedByTheQuorumAndCaughtUp() async throws {
        let cluster = try cluster(workers: 3)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 3000)
        let half = 1500 * data.dimension
        try await cluster.client { client in
            try await create(client, data, replication: 3)
            try await client.load("docs", vectors: Array(data.base.values[..<half]), dimension: data.dimension)
        }
        cluster.workers[2].crash()
        try await cluster.client { client in
            try await waitUntil("worker 2 is seen down") { try await health(client, cluster.workers[2]) == .down }
            // Two of three replicas store it: acknowledged, and the third is marked behind.
            try await client.load("docs", vectors: Array(data.base.values[half...]), dimension: data.dimension)
            #expect(try await behindCount(client) > 0)
            try await expectEveryRowFinds(itself: 0 ..< 3000, in: data, client)
        }
        try cluster.startAgain(2)
        try await cluster.client { client in
            try await waitUntil("worker 2 is caught up") { try await behindCount(client) == 0 }
        }
        // Worker 2 alone now answers for everything.
        cluster.workers[0].crash()
        cluster.workers[1].crash()
        try await cluster.client { client in
            try await waitUntil("workers 0 and 1 are seen down") {
                let first = try await health(client, cluster.workers[0])
                let second = try await health(client, cluster.workers[1])
                return first == .down && second == .down
            }
            try await expectEveryRowFinds(itself: 0 ..< 3000, in: data, client)
        }
    }

    @Test func aWipedWorkerIsRefilledAndCoverageStaysHonest() async throws {
        let cluster = try cluster(workers: 2)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 3000)
        try await cluster.client { client in
            try await create(client, data, replication: 2)
            try await client.load("docs", vectors: data.base.values, dimension: data.dimension)
        }
        cluster.workers[0].crash()
        try await cluster.client { client in
            try await waitUntil("worker 0 is seen down") { try await health(client, cluster.workers[0]) == .down }
            // Both replicas must store a write (quorum 2): with one down nothing is acknowledged.
            do {
                try await client.load("docs", vectors: Array(data.queries.values), dimension: data.dimension, retries: 0)
                Issue.record("a write was acknowledged by one of two replicas")
            } catch let error as QuiverClientError {
                #expect(error.code == .unavailable)
            }
        }
        try cluster.startAgain(0, wipe: true)
        try await cluster.client { client in
            // While worker 0 is refilled, every answer is complete (from worker 1) or says it is not.
            var sawBehind = false
            try await waitUntil("worker 0 is refilled") {
                let behind = try await behindCount(client)
                sawBehind = sawBehind || behind > 0
                try await expectEveryRowFinds(itself: 0 ..< 3000, in: data, client)
                let refilled = try await health(client, cluster.workers[0])
                return behind == 0 && refilled == .healthy && sawBehind
            }
        }
        cluster.workers[1].crash()
        try await cluster.client { client in
            try await waitUntil("worker 1 is seen down") { try await health(client, cluster.workers[1]) == .down }
            try await expectEveryRowFinds(itself: 0 ..< 3000, in: data, client)
            #expect(try await client.describeCollection("docs").vectorCount == 3000)
        }
    }

    @Test func aResentLoadStoresNothingTwiceAndConflictingIdsAreCaught() async throws {
        let cluster = try cluster(workers: 2)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 2000)
        try await cluster.client { client in
            try await create(client, data, replication: 1)
            let first = try await client.load("docs", vectors: data.base.values, dimension: data.dimension, batchRows: 300,
                                              loadID: "batch-load-1")
            let again = try await client.load("docs", vectors: data.base.values, dimension: data.dimension, batchRows: 700,
                                              loadID: "batch-load-1")
            #expect(first.assignedIds == again.assignedIds)
            #expect(try await client.describeCollection("docs").vectorCount == 2000)
            try await expectEveryRowFinds(itself: 0 ..< 2000, in: data, client)
        }
        // Caller ids: the same rows again are fine, another vector under a stored id is not.
        try await cluster.client { client in
            var settings = CollectionSettings(name: "ids", dimension: data.dimension, metric: .innerProduct)
            settings.nlist = 8
            _ = try await client.createCollection(settings)
            _ = try await client.train("ids", fromFile: data.basePath)
            let ids = (0 ..< 500).map { Int64(10_000 + $0) }
            let vectors = Array(data.base.values[..<(500 * data.dimension)])
            let others = Array(data.base.values[(500 * data.dimension) ..< (1000 * data.dimension)])
            try await client.load("ids", vectors: vectors, dimension: data.dimension, ids: ids)
            try await client.load("ids", vectors: vectors, dimension: data.dimension, ids: ids)
            #expect(try await client.describeCollection("ids").vectorCount == 500)
            do {
                try await client.load("ids", vectors: others, dimension: data.dimension, ids: ids)
                Issue.record("other vectors under stored ids were accepted")
            } catch let error as QuiverClientError {
                #expect(error.code == .alreadyExists && error.message.contains("10000"))
            }
            try await client.load("ids", vectors: others, dimension: data.dimension, ids: ids, onDuplicateID: .replace)
            #expect(try await client.describeCollection("ids").vectorCount == 500)
            let hits = try await client.search("ids", queries: Array(others[..<(50 * data.dimension)]),
                                               dimension: data.dimension, k: 10, nprobe: 8, reorderK: 200)
            let replaced = (0 ..< 50).filter { hits.ids(ofQuery: $0).first == Int64(10_000 + $0) }.count
            #expect(replaced == 50, "\(replaced) of 50 replaced vectors found under their ids")
        }
    }

    @Test func deletesSurviveRestartsAndAreNeverFound() async throws {
        let cluster = try cluster(workers: 2)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 2000)
        let removed = Array(stride(from: Int64(0), to: 2000, by: 4))
        try await cluster.client { client in
            try await create(client, data, replication: 2)
            try await client.load("docs", vectors: data.base.values, dimension: data.dimension)
            #expect(try await client.delete("docs", ids: removed) == removed.count)
            #expect(try await client.delete("docs", ids: removed) == 0)
            #expect(try await client.describeCollection("docs").vectorCount == UInt64(2000 - removed.count))
        }
        try cluster.restartWorker(0, crash: true)
        try cluster.restartWorker(1)
        try cluster.restartCoordinator(crash: true)
        try await cluster.client { client in
            try await waitUntil("the workers are back") { try await client.clusterStatus().workers.allSatisfy { $0.health == .healthy } }
            let hits = try await client.search("docs", queries: data.base.values, dimension: data.dimension, k: 10, nprobe: 12,
                                               reorderK: 200, requireFullCoverage: true)
            let gone = Set(removed)
            #expect(!hits.ids.contains { gone.contains($0) })
            let lost = (0 ..< 2000).filter { $0 % 4 != 0 && !hits.ids(ofQuery: $0).contains(Int64($0)) }.count
            #expect(lost == 0, "\(lost) rows that were not deleted are not found")
        }
    }

    @Test func aWorkerThatStaysDownIsReplaced() async throws {
        let cluster = try cluster(workers: 3, deadAfter: 1)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 2000)
        try await cluster.client { client in
            try await create(client, data, replication: 2)
            try await client.load("docs", vectors: data.base.values, dimension: data.dimension)
        }
        let dead = cluster.workers[1].address.description
        cluster.workers[1].crash()
        try await cluster.client { client in
            try await waitUntil("the dead worker's lists live elsewhere and are repaired") {
                let status = try await client.clusterStatus()
                let mapped = status.shardMaps.first?.assignments.contains { $0.workerID == dead } ?? true
                return !mapped && status.unhealthyReplicas.isEmpty
            }
            try await expectEveryRowFinds(itself: 0 ..< 2000, in: data, client)
            // And writes are acknowledged again (both replicas of every list are up).
            try await client.load("docs", vectors: data.queries.values, dimension: data.dimension)
        }
    }

    @Test func aNewWorkerTakesItsShareOfTheLists() async throws {
        let cluster = try cluster(workers: 2)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 2000)
        try await cluster.client { client in
            try await create(client, data, replication: 2)
            try await client.load("docs", vectors: data.base.values, dimension: data.dimension)
        }
        let newcomer = try cluster.addWorker().address.description
        try await cluster.client { client in
            try await waitUntil("the new worker holds lists, copied and serving, and the others released theirs") {
                let status = try await client.clusterStatus()
                let owned = status.workers.map(\.listsOwned)
                let joined = status.workers.first { $0.address == newcomer }
                return status.workers.count == 3 && (joined?.listsOwned ?? 0) >= 4 && status.unhealthyReplicas.isEmpty
                    && owned.reduce(0, +) == 24 && status.workers.allSatisfy { $0.health == .healthy }
            }
            try await expectEveryRowFinds(itself: 0 ..< 2000, in: data, client)
            // Writes reach the new layout: every replica of every list stores them.
            try await client.load("docs", vectors: data.queries.values, dimension: data.dimension)
            let status = try await client.clusterStatus()
            #expect(status.unhealthyReplicas.isEmpty)
        }
    }

    @Test func aDrainedWorkerEndsUpHoldingNothing() async throws {
        let cluster = try cluster(workers: 3)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 2000)
        let drained = cluster.workers[0].address.description
        try await cluster.client { client in
            try await create(client, data, replication: 1)
            try await client.load("docs", vectors: data.base.values, dimension: data.dimension)
            #expect(try await client.drainWorker(drained) > 0)
            try await waitUntil("the drained worker holds no lists") {
                let status = try await client.clusterStatus()
                let worker = status.workers.first { $0.workerID == drained }
                return status.unhealthyReplicas.isEmpty && worker?.health == .draining && worker?.listsOwned == 0 && worker?.vectors == 0
            }
            try await expectEveryRowFinds(itself: 0 ..< 2000, in: data, client)
            #expect(try await client.removeWorker(drained) == 2)
        }
    }

    @Test(arguments: [true, false])
    func aServerSideLoadOutlivesACoordinatorRestart(crash: Bool) async throws {
        let cluster = try cluster(workers: 2)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 20_000, queries: 10)
        let job = try await cluster.client { client in
            try await create(client, data, replication: 2)
            let job = try await client.loadFiles("docs", pathGlob: data.basePath, batchSize: 250)
            try await waitUntil("the load is under way") { try await client.loadStatus(job.loadJobID).rowsDone > 0 }
            return job.loadJobID
        }
        try cluster.restartCoordinator(crash: crash)
        try await cluster.client { client in
            var status = try await client.loadStatus(job)
            #expect(status.rowsDone < 20_000, "the load finished before the restart; make it bigger")
            try await waitUntil("the resumed load finishes", seconds: 120) {
                status = try await client.loadStatus(job)
                return status.state == .succeeded || status.state == .failed
            }
            #expect(status.state == .succeeded, "\(status.error)")
            #expect(status.rowsDone == 20_000)
            let counted = try await client.describeCollection("docs").vectorCount
            #expect(counted == 20_000, "the collection counts \(counted) vectors")
            let sample = Array(stride(from: 0, to: 20_000, by: 97))
            let queries = sample.flatMap { Array(data.base.values[$0 * data.dimension ..< ($0 + 1) * data.dimension]) }
            let hits = try await client.search("docs", queries: queries, dimension: data.dimension, k: 10, nprobe: 12, reorderK: 4000,
                                               requireFullCoverage: true)
            let found = sample.indices.filter { hits.ids(ofQuery: $0).contains(Int64(sample[$0])) }.count
            let twice = sample.indices.filter { index in hits.ids(ofQuery: index).filter { $0 == Int64(sample[index]) }.count > 1 }.count
            #expect(found == sample.count, "\(sample.count - found) sampled rows are missing")
            #expect(twice == 0)
        }
    }
}
