import Foundation
import GRPCCore
import QuiverClient
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import Testing

/// Seeded clustered unit vectors written to .npy files, as users bring them.
struct ClusterData {
    let dimension = 32
    let base: Matrix
    let queries: Matrix
    let folder: URL

    init(folder: URL, count: Int = 4000, queries queryCount: Int = 60) throws {
        var generator = SeededGenerator(seed: 99)
        let dimension = dimension
        let centers = (0 ..< 24 * dimension).map { _ in Float.random(in: -1 ... 1, using: &generator) }
        func draw(_ n: Int) -> Matrix {
            var values: [Float] = []
            for _ in 0 ..< n {
                let c = Int.random(in: 0 ..< 24, using: &generator)
                for j in 0 ..< dimension { values.append(centers[c * dimension + j] + Float.random(in: -0.4 ... 0.4, using: &generator)) }
            }
            var matrix = Matrix(rows: n, dimension: dimension, values: values)
            matrix.normalizeRows()
            return matrix
        }
        base = draw(count)
        queries = draw(queryCount)
        self.folder = folder
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try writeNpy(path: basePath, rows: base.rows, dimension: dimension, values: base.values)
    }

    var basePath: String { folder.appendingPathComponent("base.npy").path }
}

/// The `quiver` executable built beside the test bundle (or $QUIVER_BIN).
let quiverBinary: URL = {
    if let path = ProcessInfo.processInfo.environment["QUIVER_BIN"] { return URL(fileURLWithPath: path) }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("quiver")
}()

func startCluster(workers: Int) throws -> LocalCluster {
    try LocalCluster(binary: quiverBinary, workers: workers)
}

/// The coordinator learned every worker's framed port (with the cluster's TLS and join token)
/// and fell back to gRPC only where a worker missed the framed hello's deadline.
func expectFramedSearches(_ cluster: LocalCluster, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let log = cluster.coordinator.logText()
    #expect(log.components(separatedBy: "over its framed port").count - 1 == cluster.workers.count, "\(log)", sourceLocation: sourceLocation)
    // Every fallback to gRPC must be a worker too starved of CPU to answer the framed hello in
    // time (the test suite runs many clusters at once on two cores), never a framing failure.
    let fallbacks = log.split(separator: "\n").filter { $0.contains("framed search to worker") }
    #expect(fallbacks.allSatisfy { $0.contains("no answer to the hello") }, "\(log)", sourceLocation: sourceLocation)
}

/// Retries `search` while a just-started coordinator is not serving yet (UNAVAILABLE), for at
/// most 30 s.
func searchWhenServing<Result: Sendable>(_ client: QuiverClient, _ search: (QuiverClient) async throws -> Result) async throws -> Result {
    let deadline = ContinuousClock.now + .seconds(30)
    while true {
        do {
            return try await search(client)
        } catch let error as RPCError where error.code == .unavailable && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// Every test here starts a real coordinator and workers as separate processes on loopback.
@Suite(.serialized) struct ClusterTests {
    @Test func clusterAnswersLikeTheInProcessIndex() async throws {
        let cluster = try startCluster(workers: 2)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.root.appendingPathComponent("data"))
        let hits = try await cluster.client { client in
            var settings = CollectionSettings(name: "docs", dimension: data.dimension, metric: .innerProduct)
            settings.nlist = 16
            _ = try await client.createCollection(settings)
            let trained = try await client.train("docs", fromFile: data.basePath)
            #expect(trained.nlist == 16)
            let loaded = try await client.load("docs", vectors: data.base.values, dimension: data.dimension,
                                               ids: (0 ..< Int64(data.base.rows)).map { $0 }, batchRows: 700)
            #expect(loaded.rowsAccepted == UInt64(data.base.rows))
            let status = try await client.clusterStatus()
            #expect(status.workers.count == 2)
            #expect(status.workers.allSatisfy { $0.listsOwned > 0 })
            #expect(status.workers.reduce(0) { $0 + $1.listsOwned } >= 16)
            let batch = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 10, nprobe: 4, reorderK: 20)
            // The same queries one per request, many in flight on the client's and the
            // coordinator's search streams (answers come back in any order): each must still get
            // exactly its own answer.
            let d = data.dimension
            let single = try await withThrowingTaskGroup(of: (Int, [Int64], [Float]).self) { group in
                var answers: [Int: ([Int64], [Float])] = [:]
                for query in 0 ..< data.queries.rows {
                    if query >= 24 { if let (q, ids, scores) = try await group.next() { answers[q] = (ids, scores) } }
                    group.addTask {
                        let hit = try await client.search("docs", queries: Array(data.queries.values[query * d ..< (query + 1) * d]),
                                                          dimension: d, k: 10, nprobe: 4, reorderK: 20)
                        return (query, hit.ids, hit.scores)
                    }
                }
                for try await (q, ids, scores) in group { answers[q] = (ids, scores) }
                return answers
            }
            for query in 0 ..< data.queries.rows {
                #expect(single[query]?.0 == Array(batch.ids(ofQuery: query)), "query \(query) alone")
                #expect(single[query]?.1 == Array(batch.scores(ofQuery: query)), "query \(query) alone")
            }
            return batch
        }
        #expect(hits.coverage == 1)
        // Those went to the coordinator's framed search port; its gRPC SearchStream answers the same.
        let overGRPCClient = try await cluster.client(framedSearch: false) { client in
            try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 10, nprobe: 4, reorderK: 20)
        }
        #expect(overGRPCClient.ids == hits.ids)
        #expect(overGRPCClient.scores == hits.scores)
        // Those searches went over the workers' framed ports, which the coordinator learned from
        // their Stats; over gRPC the answers are the same.
        try expectFramedSearches(cluster)
        try cluster.restartCoordinator(arguments: ["--worker-search-transport", "grpc"])
        let overGRPC = try await cluster.client { client in
            try await searchWhenServing(client) {
                try await $0.search("docs", queries: data.queries.values, dimension: data.dimension, k: 10, nprobe: 4, reorderK: 20)
            }
        }
        #expect(overGRPC.ids == hits.ids)
        #expect(overGRPC.scores == hits.scores)
        #expect(!cluster.coordinator.logText().contains("over its framed port"))

        // The same model, built into one in-process index, must give the same neighbours.
        let model = try CollectionStore.installedModel(dataDirectory: cluster.workerDataDirectory(0).path, name: "docs")
        var index = IVFIndex(model: model)
        try index.add(data.base, threads: 2)
        let local = try index.search(data.queries, parameters: SearchParameters(k: 10, nprobe: 4, reorderK: 20), threads: 2)
        // Ties aside: 4-bit estimates are sums of uint8 table entries, so candidates often tie. A
        // query whose 20th and 21st candidates tie may keep either; every other query must
        // match exactly, ids and scores.
        let boundary = try index.search(data.queries, parameters: SearchParameters(k: 21, nprobe: 4, reorderK: 0), threads: 2)
        var tied = 0
        for query in 0 ..< data.queries.rows {
            let estimates = boundary.distances(ofQuery: query)
            if estimates[estimates.startIndex + 19] == estimates[estimates.startIndex + 20] {
                tied += 1
                continue
            }
            #expect(hits.ids(ofQuery: query) == local.ids(ofQuery: query), "query \(query)")
            for (localDistance, score) in zip(local.distances(ofQuery: query), hits.scores(ofQuery: query)) {
                #expect(abs(model.configuration.metric.score(fromDistance: localDistance) - score) <= 1e-6)
            }
        }
        #expect(tied < data.queries.rows / 4)
    }

    @Test func badInputGetsTheRightStatusAndLosesNothing() async throws {
        let cluster = try startCluster(workers: 1)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.root.appendingPathComponent("data"), count: 1500)
        try await cluster.client { client in
            var settings = CollectionSettings(name: "docs", dimension: data.dimension, metric: .cosine)
            settings.nlist = 8
            _ = try await client.createCollection(settings)
            await expectCode(.alreadyExists) { _ = try await client.createCollection(settings) }
            await expectCode(.failedPrecondition) {
                _ = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 5)
            }
            await expectCode(.failedPrecondition) {
                _ = try await client.load("docs", vectors: data.base.values, dimension: data.dimension)
            }
            await expectCode(.permissionDenied) { _ = try await client.train("docs", fromFile: "/nonexistent/base.*.npy") }
            await expectCode(.notFound) { _ = try await client.train("docs", fromFile: "missing.*.npy") }
            _ = try await client.train("docs", fromFile: data.basePath)
            try await client.load("docs", vectors: data.base.values, dimension: data.dimension)
            let before = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 5)

            let q = data.queries.values
            await expectCode(.invalidArgument) { _ = try await client.search("docs", queries: Array(q.prefix(31)), dimension: 31, k: 5) }
            var nan = q
            nan[3] = .nan
            await expectCode(.invalidArgument) { _ = try await client.search("docs", queries: nan, dimension: data.dimension, k: 5) }
            await expectCode(.invalidArgument) { _ = try await client.search("docs", queries: q, dimension: data.dimension, k: 0) }
            await expectCode(.invalidArgument) { _ = try await client.search("docs", queries: q, dimension: data.dimension, k: 50_000_000) }
            await expectCode(.invalidArgument) { _ = try await client.search("docs", queries: q, dimension: data.dimension, k: 5, nprobe: 9) }
            await expectCode(.notFound) { _ = try await client.search("nope", queries: q, dimension: data.dimension, k: 5) }
            await expectCode(.invalidArgument) {
                _ = try await client.load("docs", vectors: Array(repeating: 0.5, count: 31 * 4), dimension: 31)
            }
            await expectCode(.invalidArgument) { _ = try await client.load("docs", vectors: nan, dimension: data.dimension) }
            await expectCode(.permissionDenied) { _ = try await client.loadFiles("docs", pathGlob: "/nonexistent/*.npy") }
            await expectCode(.notFound) { _ = try await client.loadFiles("docs", pathGlob: "nonexistent/*.npy") }

            // Nothing stored was lost and nothing died: the same search gives the same answer.
            let after = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 5)
            #expect(after.ids == before.ids)
            let info = try await client.describeCollection("docs")
            #expect(info.vectorCount == UInt64(data.base.rows))
        }
    }

    /// A search with no tuning knobs uses the settings the coordinator calibrated after
    /// training for the collection's recall target, and reaches that recall on queries it never
    /// saw; a search may name another target instead of nprobe and reorder_k.
    @Test func searchesWithoutKnobsReachTheCalibratedRecallTarget() async throws {
        let cluster = try startCluster(workers: 2)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.root.appendingPathComponent("data"), count: 4000, queries: 200)
        var flat = FlatIndex(dimension: data.dimension, metric: .innerProduct)
        try flat.add(data.base, ids: (0 ..< Int64(data.base.rows)).map { $0 })
        let exact = try flat.search(data.queries, k: 10)
        func recall(_ hits: SearchHits) -> Double {
            let found = (0 ..< data.queries.rows).reduce(0) { $0 + Set(hits.ids(ofQuery: $1)).intersection(exact.ids(ofQuery: $1)).count }
            return Double(found) / Double(data.queries.rows * 10)
        }
        let q = data.queries.values, d = data.dimension
        let defaults = try await cluster.client { client in
            var settings = CollectionSettings(name: "docs", dimension: d, metric: .innerProduct)
            settings.nlist = 40
            settings.recallTarget = 0.9
            _ = try await client.createCollection(settings)
            _ = try await client.train("docs", fromFile: data.basePath)
            let job = try await client.loadFiles("docs", pathGlob: data.basePath)
            try await waitForLoad(client, job.loadJobID)
            let info = try await client.describeCollection("docs")
            #expect(abs(info.config.recallTarget - 0.9) < 1e-6)
            #expect(info.searchDefaults.map { Int(($0.recallTarget * 100).rounded()) } == [90, 95, 99])
            #expect(info.searchDefaults.allSatisfy { $0.reached && $0.sampleRecall >= $0.recallTarget && $0.sampleRows == 4000 })
            let level = try #require(info.searchDefaults.first)
            let plain = try await client.search("docs", queries: q, dimension: d, k: 10)
            let explicit = try await client.search("docs", queries: q, dimension: d, k: 10, nprobe: Int(level.nprobe), reorderK: Int(level.reorderK))
            #expect(plain.ids == explicit.ids)
            #expect(recall(plain) >= 0.9 - 0.03, "\(level)")
            let high = try await client.search("docs", queries: q, dimension: d, k: 10, recall: 0.99)
            #expect(recall(high) >= 0.99 - 0.03, "\(info.searchDefaults[2])")
            // Between two calibrated targets: the higher one's settings.
            let between = try await client.search("docs", queries: q, dimension: d, k: 10, recall: 0.93)
            let at95 = try await client.search("docs", queries: q, dimension: d, k: 10, recall: 0.95)
            #expect(between.ids == at95.ids)
            await expectCode(.invalidArgument) { _ = try await client.search("docs", queries: q, dimension: d, k: 10, recall: 1.5) }
            await expectCode(.invalidArgument) { _ = try await client.search("docs", queries: q, dimension: d, k: 10, nprobe: 4, recall: 0.9) }
            var bad = settings
            bad.name = "other"
            bad.recallTarget = 1
            await expectCode(.invalidArgument) { _ = try await client.createCollection(bad) }
            return info.searchDefaults
        }
        // The calibrated settings are part of the collection's record: a restart keeps them.
        try cluster.restartCoordinator()
        try await cluster.client { client in
            let info = try await searchWhenServing(client) { try await $0.describeCollection("docs") }
            #expect(info.searchDefaults == defaults)
        }
    }

    @Test func restartedWorkerServesTheSameData() async throws {
        let cluster = try startCluster(workers: 2)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.root.appendingPathComponent("data"), count: 2000)
        let search: @Sendable (QuiverClient) async throws -> SearchHits = { client in
            try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 10, nprobe: 8, reorderK: 30)
        }
        let before = try await cluster.client { client in
            var settings = CollectionSettings(name: "docs", dimension: data.dimension, metric: .innerProduct)
            settings.nlist = 12
            _ = try await client.createCollection(settings)
            _ = try await client.train("docs", fromFile: data.basePath)
            let job = try await client.loadFiles("docs", pathGlob: data.basePath)
            try await waitForLoad(client, job.loadJobID)
            return try await search(client)
        }
        try cluster.restartWorker(0)
        let after = try await cluster.client { client in
            // The coordinator routes around a worker it saw down until a heartbeat sees it back.
            for _ in 0 ..< 100 where try await !client.clusterStatus().workers.allSatisfy({ $0.health == .healthy }) {
                try await Task.sleep(for: .milliseconds(100))
            }
            return try await search(client)
        }
        #expect(after.ids == before.ids)
        #expect(after.coverage == 1)
    }

    @Test func trainsOnTheFirstLoadWhenAsked() async throws {
        let cluster = try startCluster(workers: 2)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.root.appendingPathComponent("data"), count: 3000)
        try await cluster.client { client in
            let created = try await client.createCollection(CollectionSettings(name: "docs", dimension: data.dimension, metric: .cosine))
            // No precision named: training picks it (float16 for these unit vectors).
            #expect(created.config.storeRawVectors && created.config.rawVectorPrecision == .unspecified)
            _ = try await client.trainOnFirstLoad("docs", sampleRows: 1000)
            let loaded = try await client.load("docs", vectors: data.base.values, dimension: data.dimension, batchRows: 500)
            #expect(loaded.rowsAccepted == UInt64(data.base.rows))
            let info = try await client.describeCollection("docs")
            #expect(info.state == .ready)
            #expect(info.vectorCount == UInt64(data.base.rows))
            #expect(info.nlist > 0)
            #expect(info.config.rawVectorPrecision == .float16)
            // Every stored vector finds itself (cosine: score 1) with the default settings.
            let hits = try await client.search("docs", queries: Array(data.base.values.prefix(20 * data.dimension)),
                                               dimension: data.dimension, k: 1)
            #expect(hits.ids == (0 ..< 20).map(Int64.init))
            #expect(hits.scores.allSatisfy { abs($0 - 1) < 1e-4 })
        }
    }

    @Test func searchKeepsAnsweringWhenAWorkerDies() async throws {
        let cluster = try startCluster(workers: 2)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.root.appendingPathComponent("data"), count: 2000)
        try await cluster.client { client in
            var settings = CollectionSettings(name: "docs", dimension: data.dimension, metric: .innerProduct)
            settings.nlist = 12
            _ = try await client.createCollection(settings)
            _ = try await client.train("docs", fromFile: data.basePath)
            try await client.load("docs", vectors: data.base.values, dimension: data.dimension)
        }
        cluster.workers[1].crash()
        try await cluster.client { client in
            let partial = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 10, nprobe: 12)
            #expect(partial.coverage > 0 && partial.coverage < 1)
            #expect(partial.ids.contains { $0 >= 0 })
            await expectCode(.unavailable) {
                _ = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 10, nprobe: 12,
                                            requireFullCoverage: true)
            }
        }
    }
}

func waitForLoad(_ client: QuiverClient, _ job: String) async throws {
    for _ in 0 ..< 600 {
        let status = try await client.loadStatus(job)
        if status.state == .succeeded { return }
        if status.state == .failed { throw LocalClusterError("load failed: \(status.error)") }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw LocalClusterError("load did not finish in 60 s")
}

func expectCode(_ code: RPCError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                _ body: () async throws -> Void) async {
    await expectCodes([code], sourceLocation: sourceLocation, body)
}

func expectCodes(_ codes: [RPCError.Code], sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected \(codes), the call succeeded", sourceLocation: sourceLocation)
    } catch let error as QuiverClientError {
        #expect(codes.contains(error.code), "got \(error)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
    } catch let error as RPCError {
        #expect(codes.contains(error.code), "got \(error)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}
