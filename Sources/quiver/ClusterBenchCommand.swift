import ArgumentParser
import Foundation
import QuiverClient
import QuiverCoordinator
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `quiver bench-cluster`: for 1, 2 and 4 workers, starts a real local cluster (separate
/// processes on loopback), bulk-loads the data through it, and measures search QPS and latency
/// at several concurrencies and batch sizes — beside the in-process engine on the same model and
/// data in the same run.
struct ClusterBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-cluster",
        abstract: "Measure cluster load speed, QPS and latency against the in-process engine.")

    @Option(help: "Folder holding base.npy, queries.npy and groundtruth.npy.")
    var data: String
    @Option(help: "Comma-separated worker counts.")
    var workers: IntegerList = IntegerList(argument: "1,2,4")!
    @Option(help: "Comma-separated numbers of requests in flight.")
    var concurrency: IntegerList = IntegerList(argument: "1,4,16")!
    @Option(help: "Comma-separated queries per request.")
    var batch: IntegerList = IntegerList(argument: "1,100")!
    @Option(help: "Neighbours per query.")
    var k = 10
    @Option(help: "Lists probed per query.")
    var nprobe = 16
    @Option(help: "Candidates re-ranked exactly.")
    var reorder = 40
    @Option(name: .customLong("seconds"), help: "Seconds each measurement runs.")
    var duration = 5.0
    @Option(help: "Threads per worker process and for the in-process engine (default: all cores).")
    var threads: Int?
    @Option(help: "Write the rows as JSON to this file.")
    var json: String?
    @Option(help: ArgumentHelp("Comma-separated ways the coordinator sends searches to workers, each measured in turn on the same cluster (the coordinator is restarted between them): framed (the workers' framed search ports) or grpc. Repeat one to see the noise, e.g. framed,grpc,framed.",
                               valueName: "list"))
    var workerTransport = "framed"
    @Option(help: ArgumentHelp("Comma-separated ways the client sends searches to the coordinator, each measured in turn: framed (the coordinator's framed search port, the Swift library's fast path) or grpc (its SearchStream, what other clients use).",
                               valueName: "list"))
    var clientTransport = "framed,grpc"
    @Option(help: "Measure a running cluster at this coordinator instead of starting local ones (no load, no in-process rows).")
    var coordinator: String?
    @Option(help: "With --coordinator: the loaded collection to query.")
    var collection = "bench"

    func run() async throws {
        let transports = try self.transports
        let clientTransports = try self.clientTransports
        let folder = URL(fileURLWithPath: absolutePath(data))
        let basePath = folder.appendingPathComponent("base.npy").path
        let queryFile = try VectorDataset(path: folder.appendingPathComponent("queries.npy").path)
        let queries = Matrix(rows: queryFile.count, dimension: queryFile.dimension, values: try queryFile.readAll())
        let truth = try readIntegerMatrix(path: folder.appendingPathComponent("groundtruth.npy").path)
        let engineThreads = threads ?? availableCores
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        emit("# bench-cluster data=\(data) queries=\(queries.rows) k=\(k) nprobe=\(nprobe) reorder=\(reorder) threads=\(engineThreads) cores=\(availableCores)")
        var rows: [ClusterBenchRow] = []
        // What a hop costs with nothing on top, measured between two processes beside the
        // cluster rows: the floor each hop's added latency is held against at the end.
        if coordinator == nil {
            do {
                rows += try await measureHopFloor(binary: binary)
            } catch {
                emit("echo       not measured (\(error)); the hop report is left out")
            }
        }
        if let coordinator {
            guard let address = HostAndPort(coordinator) else { throw ValidationError("--coordinator must be HOST:PORT, got \(coordinator)") }
            try await QuiverClient.withConnection(to: address) { client in
                rows += try await measureCluster(client, collection: collection, workers: 0, queries: queries, truth: truth)
            }
        }
        for workerCount in coordinator == nil ? workers.values : [] {
            let cluster = try LocalCluster(binary: binary, workers: workerCount, workerThreads: threads, importRoot: folder)
            defer { cluster.shutdown() }
            let loadStart = ContinuousClock.now
            let (trainSeconds, loadOnly, rowsLoaded) = try await cluster.client { client in
                _ = try await client.createCollection(CollectionSettings(name: "bench", dimension: queries.dimension, metric: .innerProduct))
                let trainStart = ContinuousClock.now
                _ = try await client.train("bench", fromFile: basePath)
                let trainSeconds = seconds(since: trainStart)
                let loadFilesStart = ContinuousClock.now
                let job = try await client.loadFiles("bench", pathGlob: basePath)
                while true {
                    let status = try await client.loadStatus(job.loadJobID)
                    if status.state == .succeeded { return (trainSeconds, seconds(since: loadFilesStart), Int(status.rowsDone)) }
                    if status.state == .failed { throw LocalClusterError("load failed: \(status.error)") }
                    // A load of 100,000 rows takes about a second: a coarse poll would be a tenth of it.
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let total = seconds(since: loadStart)
            emit(String(format: "load workers=%d: %d vectors, train %.1f s, load %.1f s (%.0f vectors/s), train+load %.1f s",
                         workerCount, rowsLoaded, trainSeconds, loadOnly, Double(rowsLoaded) / loadOnly, total))
            rows.append(ClusterBenchRow(mode: "load", workers: workerCount, concurrency: 0, batch: 0, qps: Double(rowsLoaded) / loadOnly,
                                        p50Microseconds: 0, p99Microseconds: 0, recall: 0, seconds: total, trainSeconds: trainSeconds))

            // The in-process engine on the very model the workers hold, built in this process, with
            // the same threads per request as a worker uses.
            if workerCount == workers.values.first {
                let model = try CollectionStore.installedModel(dataDirectory: cluster.workerDataDirectory(0).path, name: "bench")
                var built = IVFIndex(model: model)
                let base = try VectorDataset(path: basePath)
                try built.add(Matrix(rows: base.count, dimension: base.dimension, values: try base.readAll()), threads: engineThreads)
                let index = built
                for batchSize in batch.values {
                    for inFlight in concurrency.values {
                        let parameters = SearchParameters(k: k, nprobe: nprobe, reorderK: reorder)
                        let row = try await measure(mode: "in-process", workers: 0, concurrency: inFlight, batch: batchSize,
                                                    queries: queries, truth: truth) { batchQueries in
                            let results = try index.search(batchQueries, parameters: parameters, threads: engineThreads)
                            return results.ids
                        }
                        rows.append(row)
                    }
                }
            }
            var current = WorkerSearchTransport.framed
            for transport in transports {
                if transport != current {
                    try cluster.restartCoordinator(arguments: ["--worker-search-transport", transport.rawValue])
                    current = transport
                    try await waitUntilSearchable(cluster, dimension: queries.dimension)
                }
                for clientTransport in clientTransports {
                    emit("# workers=\(workerCount): client → coordinator searches over \(clientTransport.rawValue), coordinator → worker over \(transport.rawValue)")
                    try await cluster.client(framedSearch: clientTransport == .framed) { client in
                        let processes = [("coordinator", cluster.coordinator.pid)]
                            + cluster.workers.enumerated().map { ("worker-\($0.offset)", $0.element.pid) }
                        rows += try await measureCluster(client, collection: "bench", workers: workerCount, queries: queries, truth: truth,
                                                         mode: "cluster client=\(clientTransport.rawValue) hop=\(transport.rawValue)",
                                                         processes: processes)
                    }
                }
            }
        }
        emit("# ratios: cluster QPS / in-process QPS at the same batch and concurrency")
        for row in rows where row.mode.hasPrefix("cluster") {
            if let local = rows.first(where: { $0.mode == "in-process" && $0.batch == row.batch && $0.concurrency == row.concurrency }) {
                emit(String(format: "%@ workers=%d batch=%d concurrency=%d: %.0f / %.0f = %.2f", row.mode as NSString, row.workers, row.batch,
                             row.concurrency, row.qps, local.qps, row.qps / local.qps))
            }
        }
        reportHops(rows)
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(rows).write(to: URL(fileURLWithPath: json))
        }
    }

    /// Echoes one query's worth of bytes (1,536) between this process and a `bench-transport`
    /// server: over raw TCP with blocking reads (the floor under any hop on this machine) and
    /// as framed messages (the transport the cluster's hops use), one at a time.
    private func measureHopFloor(binary: URL) async throws -> [ClusterBenchRow] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-bench-echo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let port = try Self.freePortRun(3)
        let server = try ServerProcess(binary: binary, name: "echo", arguments: ["bench-transport", "--serve", String(port)],
                                       logDirectory: folder)
        defer { server.stop() }
        let echoes = try await TransportBenchCommand.measure(port: port, kinds: ["raw", "framed"], concurrency: [1], count: 3000, bytes: 1536)
        for echo in echoes {
            emit(String(format: "echo       %@ round trip, 1536 bytes each way, 1 in flight: %.0f µs", echo.name as NSString, echo.microseconds))
        }
        return echoes.map { echo in
            var row = ClusterBenchRow(mode: "echo \(echo.kind)", workers: 0, concurrency: 1, batch: 1, qps: echo.perSecond,
                                      p50Microseconds: 0, p99Microseconds: 0, recall: 0, seconds: 0, trainSeconds: 0)
            row.roundTripMicroseconds = echo.microseconds
            return row
        }
    }

    /// For each cluster row at batch 1 and concurrency 1: the latency it adds to the in-process
    /// engine's, per round trip (client → coordinator, coordinator → worker), against the floor.
    private func reportHops(_ rows: [ClusterBenchRow]) {
        guard let raw = rows.first(where: { $0.mode == "echo raw" })?.roundTripMicroseconds,
              let framed = rows.first(where: { $0.mode == "echo framed" })?.roundTripMicroseconds,
              let local = rows.first(where: { $0.mode == "in-process" && $0.batch == 1 && $0.concurrency == 1 }) else { return }
        let hopped = rows.filter { $0.mode.hasPrefix("cluster") && $0.batch == 1 && $0.concurrency == 1 }
        guard !hopped.isEmpty else { return }
        emit(String(format: "# hops at batch 1, concurrency 1: p50 added to the in-process engine's (%.0f µs), per round trip, against a raw TCP echo (%.0f µs) and a framed echo (%.0f µs)",
                    local.p50Microseconds, raw, framed))
        for row in hopped {
            let roundTrips = row.workers > 0 ? 2.0 : 1.0
            let added = row.p50Microseconds - local.p50Microseconds
            let each = added / roundTrips
            emit(String(format: "%@ workers=%d: %.0f µs added over %.0f round trips = %.0f µs each: %.1f× the raw floor, %.2f× a framed echo",
                        row.mode as NSString, row.workers, added, roundTrips, each, each / raw, each / framed))
        }
    }

    /// The first of `count` consecutive loopback ports that were free a moment ago.
    private static func freePortRun(_ count: Int) throws -> Int {
        func free(_ port: Int) -> Bool {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(descriptor) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
        }
        for _ in 0 ..< 100 {
            let first = Int.random(in: 20_000 ... 30_000)
            if (first ..< first + count).allSatisfy(free) { return first }
        }
        throw ValidationError("found no \(count) consecutive free loopback ports for the echo server")
    }

    private var transports: [WorkerSearchTransport] {
        get throws { try Self.transportList(workerTransport, option: "--worker-transport") }
    }

    private var clientTransports: [WorkerSearchTransport] {
        get throws { try Self.transportList(clientTransport, option: "--client-transport") }
    }

    private static func transportList(_ text: String, option: String) throws -> [WorkerSearchTransport] {
        try text.split(separator: ",").map { name in
            guard let transport = WorkerSearchTransport(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("\(option) takes framed and grpc, got \(name)")
            }
            return transport
        }
    }

    /// After a coordinator restart: waits (at most a minute) until a search is answered.
    private func waitUntilSearchable(_ cluster: LocalCluster, dimension: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do {
                _ = try await cluster.client(timeout: .seconds(5)) { client in
                    try await client.search("bench", queries: [Float](repeating: 0.1, count: dimension), dimension: dimension, k: k,
                                            nprobe: nprobe, reorderK: reorder)
                }
                return
            } catch where ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// The worker-free round trip, then every batch size × concurrency against `collection`.
    private func measureCluster(_ client: QuiverClient, collection: String, workers workerCount: Int, queries: Matrix,
                                truth: IntegerMatrix, mode: String = "cluster",
                                processes: [(String, Int32)] = []) async throws -> [ClusterBenchRow] {
        var rows: [ClusterBenchRow] = []
        // The cost of one gRPC round trip that touches no worker, to separate transport
        // overhead from search work.
        for _ in 0 ..< 50 { _ = try await client.describeCollection(collection) }
        let rpcStart = ContinuousClock.now
        for _ in 0 ..< 500 { _ = try await client.describeCollection(collection) }
        emit(String(format: "rpc        workers=%d DescribeCollection round trip (client → coordinator only): %.0f µs",
                    workerCount, seconds(since: rpcStart) / 500 * 1e6))
        for batchSize in batch.values {
            for inFlight in concurrency.values {
                let row = try await measure(mode: mode, workers: workerCount, concurrency: inFlight, batch: batchSize,
                                            queries: queries, truth: truth, processes: processes) { batchQueries in
                    try await client.search(collection, queries: batchQueries.values, dimension: batchQueries.dimension, k: k,
                                            nprobe: nprobe, reorderK: reorder).ids
                }
                rows.append(row)
            }
        }
        return rows
    }

    /// Runs `inFlight` loops that each send batches of `batchSize` queries (cycling through the
    /// query set) for `seconds`; reports QPS, p50/p99 request latency and recall@k, and the CPU
    /// time this process ("client") and each of `processes` spent per 1,000 queries (from /proc,
    /// so it holds up better than QPS on a machine other work shares).
    private func measure(mode: String, workers: Int, concurrency inFlight: Int, batch batchSize: Int, queries: Matrix,
                         truth: IntegerMatrix, processes: [(String, Int32)] = [],
                         _ search: @escaping @Sendable (Matrix) async throws -> [Int64]) async throws -> ClusterBenchRow {
        let measured = [("client", Int32(0))] + processes
        let cpuBefore = measured.map { cpuSeconds(pid: $0.1) }
        let residentBefore = processes.map { ServerProcess.residentKiB(pid: $0.1).map { Double($0) / 1024 } }
        let batches = max(1, queries.rows / batchSize)
        let deadline = ContinuousClock.now + .milliseconds(Int64(duration * 1000))
        let next = SharedCounter()
        let k = k
        let start = ContinuousClock.now
        let perLoop = try await withThrowingTaskGroup(of: ([Double], Int, Int).self) { group in
            for _ in 0 ..< inFlight {
                group.addTask {
                    var latencies: [Double] = []
                    var hits = 0
                    var answered = 0
                    while ContinuousClock.now < deadline {
                        let b = next.next() % batches
                        let first = b * batchSize
                        let slice = Matrix(rows: batchSize, dimension: queries.dimension,
                                           values: Array(queries.values[first * queries.dimension ..< (first + batchSize) * queries.dimension]))
                        let sent = ContinuousClock.now
                        let ids = try await search(slice)
                        latencies.append(seconds(since: sent) * 1e6)
                        for q in 0 ..< batchSize {
                            let expected = Set(truth[first + q].prefix(k))
                            hits += ids[q * k ..< (q + 1) * k].filter(expected.contains).count
                        }
                        answered += batchSize
                    }
                    return (latencies, hits, answered)
                }
            }
            var all: [([Double], Int, Int)] = []
            for try await result in group { all.append(result) }
            return all
        }
        let elapsed = seconds(since: start)
        let cpuAfter = measured.map { cpuSeconds(pid: $0.1) }
        let residentAfter = processes.map { ServerProcess.residentKiB(pid: $0.1).map { Double($0) / 1024 } }
        let latencies = perLoop.flatMap(\.0).sorted()
        let answered = perLoop.reduce(0) { $0 + $1.2 }
        let hits = perLoop.reduce(0) { $0 + $1.1 }
        func percentile(_ p: Double) -> Double {
            latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
        }
        var row = ClusterBenchRow(mode: mode, workers: workers, concurrency: inFlight, batch: batchSize,
                                  qps: Double(answered) / elapsed, p50Microseconds: percentile(0.5), p99Microseconds: percentile(0.99),
                                  recall: Double(hits) / Double(max(1, answered * k)), seconds: elapsed, trainSeconds: 0)
        emit(String(format: "%-10@ workers=%d batch=%-4d concurrency=%-3d %9.0f QPS  p50 %8.0f µs  p99 %8.0f µs  recall@%d %.4f",
                     mode as NSString, workers, batchSize, inFlight, row.qps, row.p50Microseconds, row.p99Microseconds, k, row.recall))
        var cpu: [String: Double] = [:]
        for (index, (name, _)) in measured.enumerated() {
            if let before = cpuBefore[index], let after = cpuAfter[index] { cpu[name] = (after - before) * 1000 / Double(max(1, answered)) * 1000 }
        }
        if !cpu.isEmpty {
            row.cpuMillisecondsPer1000Queries = cpu
            let parts = measured.compactMap { name, _ in cpu[name].map { String(format: "%@ %.0f", name, $0) } }
            emit(String(format: "           CPU ms per 1000 queries: %@, total %.0f", parts.joined(separator: ", "), cpu.values.reduce(0, +)))
        }
        // Resident memory of the servers before and after: a server that grows under a steady
        // load (a leak) shows here.
        var resident: [String: [Double]] = [:]
        for (index, (name, _)) in processes.enumerated() {
            if let before = residentBefore[index], let after = residentAfter[index] { resident[name] = [before, after] }
        }
        if !resident.isEmpty {
            row.residentMiB = resident
            let parts = processes.compactMap { name, _ in resident[name].map { String(format: "%@ %.0f → %.0f", name, $0[0], $0[1]) } }
            emit("           resident MiB (start → end): " + parts.joined(separator: ", "))
        }
        return row
    }
}

/// One measured row. Fields a row's mode does not measure hold 0 (a load row's latencies and
/// recall; an echo row's too, whose time is `roundTripMicroseconds`).
struct ClusterBenchRow: Codable {
    let mode: String
    let workers: Int
    let concurrency: Int
    let batch: Int
    let qps: Double
    let p50Microseconds: Double
    let p99Microseconds: Double
    let recall: Double
    let seconds: Double
    let trainSeconds: Double
    /// CPU time of each process (client, coordinator, worker-N) per 1,000 queries answered.
    var cpuMillisecondsPer1000Queries: [String: Double]? = nil
    /// Resident memory of each server process (coordinator, worker-N) at the start and the end
    /// of the measurement, in MiB.
    var residentMiB: [String: [Double]]? = nil
    /// Echo rows ("echo raw", "echo framed"): the mean round trip, one message in flight.
    var roundTripMicroseconds: Double? = nil
}

/// User + system CPU seconds a process has used (`pid` 0: this one), from /proc; nil when it
/// cannot be read (another OS, or the process is gone).
func cpuSeconds(pid: Int32) -> Double? {
    let path = pid == 0 ? "/proc/self/stat" : "/proc/\(pid)/stat"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8), let close = text.lastIndex(of: ")") else { return nil }
    // After "pid (comm)": state is field 3, utime 14 and stime 15 (in clock ticks).
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// A counter the concurrent request loops share to walk through the query set.
final class SharedCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}
