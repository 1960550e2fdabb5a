import ArgumentParser
import Foundation
import QuiverClient
import QuiverProtocol
import QuiverStorage

/// Where the coordinator listens; every client command takes it.
struct CoordinatorOption: ParsableArguments {
    @Option(name: .customLong("coordinator"),
            help: "Coordinator address HOST:PORT, or several comma-separated (a leader and its standbys: the one listening answers) (default: $QUIVER_COORDINATOR, then 127.0.0.1:7700).")
    var address: String = ProcessInfo.processInfo.environment["QUIVER_COORDINATOR"] ?? "127.0.0.1:7700"

    @Option(help: "The coordinators' framed search ports HOST:PORT, comma-separated (their --search-listen): searches go there, everything else to --coordinator (default: $QUIVER_SEARCH_ADDRESS; none: searches over gRPC).")
    var searchAddress: String? = ProcessInfo.processInfo.environment["QUIVER_SEARCH_ADDRESS"].flatMap { $0.isEmpty ? nil : $0 }

    @Option(help: "Deadline for each call, in seconds.")
    var timeout: Double = 600

    @Option(help: ArgumentHelp("CA certificate (PEM) to verify the coordinator with: TLS (default: $QUIVER_TLS_CA; none = plaintext).",
                               valueName: "file"))
    var tlsCA: String?

    @Option(help: ArgumentHelp("File holding the bearer token to send (default: the token in $QUIVER_TOKEN).", valueName: "file"))
    var tokenFile: String?

    func validate() throws {
        guard HostAndPort.list(address) != nil else { throw ValidationError("--coordinator must be HOST:PORT (or several, comma-separated), got '\(address)'") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if let searchAddress, HostAndPort.list(searchAddress) == nil {
            throw ValidationError("--search-address must be HOST:PORT (or several, comma-separated), got '\(searchAddress)'")
        }
    }

    /// The token from --token-file or $QUIVER_TOKEN (never taken from the command line itself,
    /// where every local user can read it).
    func token() throws -> String? {
        if let tokenFile {
            guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                throw ValidationError("cannot read --token-file \(tokenFile)")
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return ProcessInfo.processInfo.environment["QUIVER_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    var security: ClientSecurity {
        let ca = tlsCA ?? ProcessInfo.processInfo.environment["QUIVER_TLS_CA"].flatMap { $0.isEmpty ? nil : $0 }
        return ca.map { .tls(trustRoots: $0, identity: nil) } ?? .plaintext
    }

    func connect<Result: Sendable>(_ body: (QuiverClient) async throws -> Result) async throws -> Result {
        do {
            return try await QuiverClient.withConnection(to: HostAndPort.list(address)!, timeout: .milliseconds(Int64(timeout * 1000)),
                                                         security: security, token: token(),
                                                         searchAddresses: searchAddress.flatMap(HostAndPort.list) ?? [], body)
        } catch let error as QuiverClientError {
            FileHandle.standardError.write(Data("error: \(error.description)\n".utf8))
            throw ExitCode.failure
        }
    }
}

extension Quiver_V1_Metric: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument.lowercased() {
        case "ip", "dot", "inner_product": self = .innerProduct
        case "l2", "euclidean": self = .l2
        case "cosine", "cos", "angular": self = .cosine
        default: return nil
        }
    }
}

struct CreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a collection.")
    @OptionGroup var coordinator: CoordinatorOption
    @Argument(help: "Collection name.") var name: String
    @Option(help: "Vector dimension.") var dimension: Int
    @Option(help: "ip, l2 or cosine.") var metric: Quiver_V1_Metric
    @Option(help: "Inverted lists (default: 2·√n of the data at training time).") var nlist: Int = 0
    @Option(help: "PQ subspaces (default d/2).") var m: Int = 0
    @Option(help: "Bits per PQ code: 4 (FastScan) or 8.") var nbits: Int = 4
    @Option(help: "Anisotropic (score-aware) threshold T for ip/cosine (default 0.1; a negative value turns it off; ignored for l2).") var anisotropic: Float = 0
    @Option(help: "Raw vectors kept for re-ranking: auto (float16 unless the training data needs float32), float32, float16 or none.") var raw: String = "auto"
    @Option(help: "Workers holding each list.") var replication: Int = 1
    @Option(help: "Replicas of each list that must store a batch before it is acknowledged (default: a majority of --replication).") var writeQuorum: Int = 0
    @Option(help: "recall@10 a query without --nprobe/--reorder/--recall aims for; the coordinator calibrates the settings after training (default 0.95).") var recallTarget: Double = 0

    func run() async throws {
        var settings = CollectionSettings(name: name, dimension: dimension, metric: metric)
        settings.nlist = nlist
        settings.subspaces = m
        settings.bitsPerCode = nbits
        settings.anisotropicThreshold = anisotropic
        switch raw {
        case "auto": settings.rawPrecision = .unspecified
        case "float32": settings.rawPrecision = .float32
        case "float16": settings.rawPrecision = .float16
        case "none": settings.storeRawVectors = false
        default: throw ValidationError("--raw must be auto, float32, float16 or none")
        }
        settings.replicationFactor = replication
        settings.writeQuorum = writeQuorum
        settings.recallTarget = recallTarget
        let info = try await coordinator.connect { try await $0.createCollection(settings) }
        print("created \(info.config.name): dimension \(info.config.dimension), metric \(metric), state \(info.state)")
    }
}

struct TrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a collection's model from a file the coordinator can read.")
    @OptionGroup var coordinator: CoordinatorOption
    @Argument(help: "Collection name.") var name: String
    @Option(help: "Training vectors (glob allowed).") var input: String
    @Option(help: "Rows sampled at most (default 256·nlist).") var maxRows: Int = 0

    func run() async throws {
        let path = absolutePath(input)
        let response = try await coordinator.connect { try await $0.train(name, fromFile: path, maxRows: maxRows) }
        print("trained \(name): model version \(response.modelVersion), nlist \(response.nlist), \(response.trainingRows) training rows")
    }
}

struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Bulk-load vectors: server-side from sharded files (default), or streamed from this machine.")
    @OptionGroup var coordinator: CoordinatorOption
    @Argument(help: "Collection name.") var name: String
    @Option(help: "Vector files, e.g. 'data/base.*.npy' (.npy, .fvecs, .bvecs).") var input: String
    @Option(help: "Id files matching --input (.npy int64/int32 or .ivecs); default: row numbers.") var ids: String?
    @Flag(help: "Read the files here and stream them to the coordinator instead of loading server-side.") var stream = false
    @Option(help: "Rows per batch.") var batch: Int = 8192

    func run() async throws {
        try await coordinator.connect { client in
            let info = try await client.describeCollection(name)
            if info.state != .ready {
                // An untrained collection learns its model from the data it is about to hold.
                print("training \(name) on a sample of \(input) …")
                let trained = try await client.train(name, fromFile: absolutePath(input))
                print("trained: model version \(trained.modelVersion), nlist \(trained.nlist)")
            }
            if stream {
                try await streamLoad(client)
            } else {
                try await serverLoad(client)
            }
        }
    }

    private func serverLoad(_ client: QuiverClient) async throws {
        let job = try await client.loadFiles(name, pathGlob: absolutePath(input), idPathGlob: ids.map(absolutePath) ?? "", batchSize: batch)
        print("load job \(job.loadJobID): \(job.filesMatched) file(s)")
        var progress = ProgressLine("loading")
        while true {
            let status = try await client.loadStatus(job.loadJobID)
            let finished = status.state == .succeeded || status.state == .failed
            progress.update(done: status.rowsDone, total: status.rowsTotal, rate: status.rowsPerSecond,
                            eta: status.state == .running ? status.etaSeconds : nil, force: finished)
            switch status.state {
            case .succeeded:
                progress.finish()
                print("loaded \(status.rowsDone) rows into \(name)")
                return
            case .failed:
                progress.finish()
                FileHandle.standardError.write(Data("error: load failed after \(status.rowsDone) rows: \(status.error)\n".utf8))
                throw ExitCode.failure
            default:
                try await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    private func streamLoad(_ client: QuiverClient) async throws {
        let dataset = try VectorDataset(pattern: input)
        let idValues = try ids.map { try readIntegerMatrix(path: $0).values }
        if let idValues, idValues.count != dataset.count {
            throw ValidationError("\(ids!) holds \(idValues.count) ids for \(dataset.count) vectors")
        }
        let start = ContinuousClock.now
        var first = 0
        var progress = ProgressLine("streaming")
        while first < dataset.count {
            let end = min(dataset.count, first + batch * 16)
            let values = try dataset.readRows(first ..< end)
            try await client.load(name, vectors: values, dimension: dataset.dimension,
                                  ids: idValues.map { Array($0[first ..< end]) }, batchRows: batch)
            first = end
            let elapsed = max(1e-9, seconds(since: start))
            let rate = Double(first) / elapsed
            progress.update(done: UInt64(first), total: UInt64(dataset.count), rate: rate,
                            eta: Double(dataset.count - first) / rate, force: first == dataset.count)
        }
        progress.finish()
        print("loaded \(dataset.count) rows into \(name)")
    }
}

struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "query", abstract: "Search a collection with queries read from a file.")
    @OptionGroup var coordinator: CoordinatorOption
    @Argument(help: "Collection name.") var name: String
    @Option(help: "Query vectors (.npy or .fvecs).") var input: String
    @Option(help: "Neighbours per query.") var k: Int = 10
    @Option(help: "Lists probed per query (default: the collection's).") var nprobe: Int?
    @Option(help: "Candidates re-ranked exactly (default: the collection's; 0: none).") var reorder: Int?
    @Option(help: "recall@10 to aim for instead of --nprobe/--reorder (default: the collection's target, see status).") var recall: Double?
    @Option(help: "Only the first N queries.") var limit: Int?
    @Option(help: "Queries per search request, sent one after another (default: all in one).") var batch: Int?
    @Option(help: "Write the ids (int64, one row of k per query) to this .npy file.") var output: String?
    @Option(help: "Write the scores (float32) to this .npy file.") var scoresOutput: String?
    @Option(help: "Print the results of at most this many queries.") var show: Int = 5
    @Option(help: "Tab-separated text, one line per base vector, to print beside the ids.") var text: String?
    @Option(help: "Tab-separated text, one line per query.") var queryText: String?
    @Option(help: "Ground-truth ids (.npy or .ivecs, one row per query) to report recall@k against.") var truth: String?

    func run() async throws {
        let dataset = try VectorDataset(pattern: input)
        let count = min(dataset.count, limit ?? dataset.count)
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1, got \(batch)") }
        let queries = try dataset.readRows(0 ..< count)
        let d = dataset.dimension
        let perRequest = min(count, batch ?? count)
        let start = ContinuousClock.now
        let hits = try await coordinator.connect { client in
            var parts: [SearchHits] = []
            for first in stride(from: 0, to: count, by: max(1, perRequest)) {
                let rows = min(perRequest, count - first)
                parts.append(try await client.search(name, queries: Array(queries[first * d ..< (first + rows) * d]), dimension: d,
                                                     k: k, nprobe: nprobe, reorderK: reorder, recall: recall))
            }
            return SearchHits(concatenating: parts)
        }
        let elapsed = seconds(since: start)
        let baseLines = try text.map(readLines)
        let queryLines = try queryText.map(readLines)
        for query in 0 ..< min(show, hits.queryCount) {
            print("query \(query)" + (queryLines.flatMap { query < $0.count ? ": \($0[query])" : nil } ?? ""))
            for (id, score) in zip(hits.ids(ofQuery: query), hits.scores(ofQuery: query)) where id >= 0 {
                let label = baseLines.flatMap { Int(id) < $0.count ? "  \($0[Int(id)])" : nil } ?? ""
                print(String(format: "  %10lld  %9.4f", id, score) + label)
            }
        }
        print(String(format: "%d queries, k=%d, %.1f ms (%.0f queries/s), coverage %.3f", hits.queryCount, k, elapsed * 1000,
                     Double(hits.queryCount) / elapsed, hits.coverage))
        if let truth {
            let expected = try readIntegerMatrix(path: truth)
            guard expected.rows >= hits.queryCount, expected.columns >= k else {
                throw ValidationError("\(truth) holds \(expected.rows)x\(expected.columns) ids; need \(hits.queryCount) rows of at least \(k)")
            }
            var found = 0
            for query in 0 ..< hits.queryCount {
                let wanted = Set(expected[query].prefix(k))
                found += hits.ids(ofQuery: query).filter(wanted.contains).count
            }
            print(String(format: "recall@%d %.4f", k, Double(found) / Double(hits.queryCount * k)))
        }
        if let output {
            try writeNpy(path: output, rows: hits.queryCount, columns: hits.k, values: hits.ids)
            print("wrote \(output)")
        }
        if let scoresOutput {
            try writeNpy(path: scoresOutput, rows: hits.queryCount, dimension: hits.k, values: hits.scores)
            print("wrote \(scoresOutput)")
        }
    }

    private func readLines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.replacingOccurrences(of: "\t", with: "  ") }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show workers, shard maps and collections.")
    @OptionGroup var coordinator: CoordinatorOption

    func run() async throws {
        let status = try await coordinator.connect { try await $0.clusterStatus() }
        print("workers:")
        for worker in status.workers {
            // The id is the address unless the worker was given one of its own.
            let name = worker.workerID == worker.address ? worker.address : "\(worker.workerID) (\(worker.address))"
            print("  \(name)  \(healthName(worker.health))  \(worker.listsOwned) lists"
                + (worker.listsBehind > 0 ? " (\(worker.listsBehind) behind)" : "")
                + ", \(worker.vectors) vector copies, \(byteCount(worker.bytes)), \(worker.queriesServed) queries")
        }
        print("collections:")
        for collection in status.collections {
            print("  \(collection.config.name): \(collection.state), dimension \(collection.config.dimension), metric \(collection.config.metric), nlist \(collection.nlist), raw \(rawName(collection.config)), vectors \(collection.vectorCount), model v\(collection.modelVersion), shard map v\(collection.shardMapVersion)"
                + (collection.error.isEmpty ? "" : ", error: \(collection.error)"))
            for level in collection.searchDefaults {
                let isDefault = abs(level.recallTarget - collection.config.recallTarget) < 1e-6
                print("    recall \(String(format: "%.2f", level.recallTarget))\(isDefault ? " (default)" : ""): nprobe \(level.nprobe), re-rank \(level.reorderK)"
                    + " (recall \(String(format: "%.3f", level.sampleRecall)) on \(level.sampleQueries) sample queries over \(level.sampleRows) training rows"
                    + (level.reached ? ")" : ", target not reached)"))
            }
        }
        if !status.unhealthyReplicas.isEmpty {
            print("list replicas not serving (\(status.unhealthyReplicas.count)):")
            var byWorker: [String: [Int32]] = [:]
            for replica in status.unhealthyReplicas { byWorker["\(replica.collection) on \(replica.workerID)", default: []].append(replica.list) }
            for (place, lists) in byWorker.sorted(by: { $0.key < $1.key }) {
                print("  \(place): \(lists.count) lists behind \(summarize(lists))")
            }
        } else {
            print("every list replica is serving")
        }
        print("shard maps:")
        for map in status.shardMaps {
            print("  \(map.collection) v\(map.version) (model v\(map.modelVersion), replication \(map.replicationFactor))")
            for assignment in map.assignments {
                let lists = (try? WireArrays.unpack(assignment.listIds, as: Int32.self, field: "list_ids")) ?? []
                print("    \(assignment.workerID): \(lists.count) lists \(summarize(lists))")
            }
        }
    }

    private func healthName(_ health: Quiver_V1_WorkerHealth) -> String {
        switch health {
        case .healthy: "healthy"
        case .suspect: "SUSPECT"
        case .down: "DOWN"
        case .draining: "draining"
        default: "unknown"
        }
    }

    private func byteCount(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }

    private func summarize(_ lists: [Int32]) -> String {
        let shown = lists.prefix(12).map(String.init).joined(separator: ",")
        return "[" + shown + (lists.count > 12 ? ",…]" : "]")
    }
}

struct DropCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drop", abstract: "Drop a collection and its data on every worker.")
    @OptionGroup var coordinator: CoordinatorOption
    @Argument(help: "Collection name.") var name: String
    @Flag(help: "Succeed if the collection does not exist.") var ifExists = false

    func run() async throws {
        let existed = try await coordinator.connect { try await $0.dropCollection(name, ifExists: ifExists) }
        print(existed ? "dropped \(name)" : "\(name) did not exist")
    }
}

struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Remove vectors by id.")
    @OptionGroup var coordinator: CoordinatorOption
    @Argument(help: "Collection name.") var name: String
    @Argument(help: "Ids to remove.") var ids: [Int64] = []
    @Option(help: "Also the ids in this file (.npy int64/int32 or .ivecs).") var idsFile: String?

    func run() async throws {
        var all = ids
        if let idsFile { all += try readIntegerMatrix(path: idsFile).values }
        guard !all.isEmpty else { throw ValidationError("name the ids to remove (as arguments or with --ids-file)") }
        let removed = try await coordinator.connect { try await $0.delete(name, ids: all) }
        print("removed \(removed) of \(all.count) ids from \(name)")
    }
}

struct DrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drain",
                                                    abstract: "Move every list off a worker (admin) before retiring it.")
    @OptionGroup var coordinator: CoordinatorOption
    @Argument(help: "The worker's id, as `quiver status` shows it.") var id: String

    func run() async throws {
        let moving = try await coordinator.connect { try await $0.drainWorker(id) }
        print("draining \(id): \(moving) lists are being copied to other workers; `quiver status` shows when it holds none")
    }
}

struct RemoveWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove-worker",
                                                    abstract: "Forget a worker (admin); refused while it holds lists.")
    @OptionGroup var coordinator: CoordinatorOption
    @Argument(help: "The worker's id, as `quiver status` shows it.") var id: String

    func run() async throws {
        let known = try await coordinator.connect { try await $0.removeWorker(id) }
        print("removed worker \(id); \(known) workers remain")
    }
}

struct CollectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "collections", abstract: "List collections.")
    @OptionGroup var coordinator: CoordinatorOption

    func run() async throws {
        for info in try await coordinator.connect({ try await $0.listCollections() }) {
            print("\(info.config.name): \(info.state), dimension \(info.config.dimension), metric \(info.config.metric), nlist \(info.nlist), vectors \(info.vectorCount)")
        }
    }
}

/// Paths sent to the coordinator must not depend on this process's working directory.
func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

/// The raw vectors a collection keeps, as `quiver create --raw` names them.
func rawName(_ config: Quiver_V1_CollectionConfig) -> String {
    guard config.storeRawVectors else { return "none" }
    switch config.rawVectorPrecision {
    case .float32: return "float32"
    case .float16: return "float16"
    default: return "auto"
    }
}
