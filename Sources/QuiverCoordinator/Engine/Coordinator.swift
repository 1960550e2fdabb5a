import CoreMetrics
import Logging
import QuiverCluster
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import Synchronization

/// Settings of a coordinator process.
public struct CoordinatorOptions: Sendable {
    public var dataDirectory: String
    /// Workers to use in addition to those already persisted ("host:port", id = address).
    public var workers: [String]
    /// Threads for training, list assignment and coarse probing.
    public var threads: Int
    /// How often workers are polled for health and statistics.
    public var heartbeatInterval: Duration
    /// The only folder server-side imports (Train from a file, LoadFiles) may read; nil turns
    /// them off.
    public var importRoot: ImportRoot?
    /// How the coordinator dials workers (mutual TLS with its own certificate, or plaintext).
    public var workerSecurity: ClientSecurity
    /// The internal hop's shared secret, presented on every call to a worker.
    public var joinToken: JoinToken?
    /// How long a worker may stay down before its lists are re-placed on other workers.
    public var deadAfter: Duration
    /// Searches to workers over their framed ports when they offer one, or always over gRPC.
    public var workerSearchTransport: WorkerSearchTransport = .framed
    /// Where the state lives when not in files under `dataDirectory` (etcd, for a coordinator
    /// that leads others standing by).
    public var metadata: (any MetadataBackend)?
    /// Starts standing by: answers searches and descriptions from the stored state (re-read
    /// every heartbeat interval), refuses changes, and leads only after `promote()`.
    public var standingBy = false

    public init(dataDirectory: String, workers: [String] = [], threads: Int = availableCores,
                heartbeatInterval: Duration = .seconds(2), importRoot: ImportRoot? = nil,
                workerSecurity: ClientSecurity = .plaintext, joinToken: JoinToken? = nil, deadAfter: Duration = .seconds(120)) {
        self.deadAfter = deadAfter
        self.dataDirectory = dataDirectory
        self.workers = workers
        self.threads = max(1, threads)
        self.heartbeatInterval = heartbeatInterval
        self.importRoot = importRoot
        self.workerSecurity = workerSecurity
        self.joinToken = joinToken
    }
}

/// The coordinator's state and operations: collections, their models and shard maps, the
/// worker set and load jobs. The gRPC service is a thin shell over this actor; placement,
/// routing, scatter and merge are QuiverCluster values it drives.
///
/// Long work (training, loading, searching) awaits off the actor, so other calls proceed
/// meanwhile; each such operation re-checks the collection's `incarnation` before committing,
/// so a collection dropped (and perhaps recreated) in between is never written to.
public actor Coordinator {
    struct Entry: Sendable {
        var record: CollectionRecord
        var model: IVFModel?
        var shardMap: ShardMap?
        /// Replicas of lists that are behind, and lists being released.
        var replicas = ReplicaStates()
        /// Named loads seen since the coordinator started (each also on disk).
        var loads: [String: LoadLedger] = [:]
        /// Distinguishes a collection from a later one with the same name.
        let incarnation: UInt64
        /// A training (from a file or a first load) is running.
        var trainingClaimed = false
    }

    /// What a load or search needs of a ready collection, taken in one step.
    struct Serving: Sendable {
        let name: String
        let settings: CollectionSettings
        let model: IVFModel
        let shardMap: ShardMap
        let incarnation: UInt64
        /// As of when the search or write began.
        let replicas: ReplicaStates
        var searchDefaults: CollectionRecord.SearchDefaults? = nil
        var vectorCount = 0
    }

    let store: CoordinatorStore
    nonisolated let pool: WorkerPool
    nonisolated let threads: Int
    nonisolated let logger: Logger
    nonisolated let files: ServerFiles
    /// Orders each collection's writes against its repairs.
    nonisolated let gates = WriteGates()
    let deadAfter: Duration
    private let heartbeatInterval: Duration
    var entries: [String: Entry] = [:] {
        didSet { mirror(entries) }
    }
    /// `entries` as of its last change, for searches: they take their collection's serving
    /// state without waiting for the actor (a hop to another thread and back per search).
    nonisolated let entryView = Mutex<[String: Entry]>([:])
    nonisolated let vectorCounts = Mutex<[String: UInt64]>([:])

    /// Copies `entries` for readers outside the actor: searches, and metrics scrapes. `didSet`
    /// calls it on every change; `init` (where observers do not run) once at its end.
    private nonisolated func mirror(_ entries: [String: Entry]) {
        entryView.withLock { $0 = entries }
        vectorCounts.withLock { $0 = entries.mapValues(\.record.vectorCount) }
    }
    private var nextIncarnation: UInt64 = 1
    var jobs: [String: LoadJob] = [:]
    /// What each job persists, and the tasks running unfinished ones.
    var jobRecords: [String: LoadJobRecord] = [:]
    var jobTasks: [String: Task<Void, Never>] = [:]
    /// Set once shutdown began: jobs stop at a batch boundary and are resumed on restart.
    var isStopping = false
    var jobCounter = 0
    /// A worker joined: upkeep moves shards onto it once the cluster is otherwise quiet.
    var rebalancePending = false
    private nonisolated let rotation = Atomic<Int>(0)
    private nonisolated let heartbeatDone = Atomic<Bool>(false)

    /// Ready to answer: its state is loaded (done in `init`) and it has heard from its workers
    /// once, so routing knows which of them are down.
    public nonisolated var isServing: Bool { heartbeatDone.load(ordering: .relaxed) }

    public init(options: CoordinatorOptions, logger: Logger) throws(CoordinatorError) {
        self.logger = logger
        self.threads = options.threads
        self.heartbeatInterval = options.heartbeatInterval
        files = ServerFiles(root: options.importRoot)
        deadAfter = options.deadAfter
        if let metadata = options.metadata {
            store = CoordinatorStore(backend: metadata)
        } else {
            store = CoordinatorStore(backend: try FileMetadata(root: options.dataDirectory))
        }
        pool = WorkerPool(logger: logger, security: options.workerSecurity, joinToken: options.joinToken,
                          searchTransport: options.workerSearchTransport)
        var endpoints = try store.loadWorkers()
        for address in options.workers where !endpoints.contains(where: { $0.id == address }) {
            endpoints.append(WorkerEndpoint(id: address, address: address))
            rebalancePending = true
        }
        for endpoint in endpoints { try pool.add(endpoint) }
        leading = Atomic(!options.standingBy)
        if !options.standingBy { try store.saveWorkers(pool.endpoints) }
        for stored in try store.loadAll(recovering: !options.standingBy) {
            entries[stored.record.name] = Entry(record: stored.record, model: stored.model, shardMap: stored.shardMap,
                                                replicas: stored.replicas, incarnation: nextIncarnation)
            nextIncarnation += 1
        }
        mirror(entries)
    }

    /// Re-reads every collection (and workers registered since) from the store; a collection
    /// keeps its incarnation while its model and settings are the same.
    private func reload(recovering: Bool = false) throws(CoordinatorError) {
        let endpoints = try store.loadWorkers()
        for endpoint in endpoints where !pool.ids.contains(endpoint.id) { try pool.add(endpoint) }
        pool.adoptFolderIDs(endpoints)
        let stored = try store.loadAll(reusing: entries.compactMapValues(\.model), recovering: recovering)
        var next: [String: Entry] = [:]
        for collection in stored {
            let name = collection.record.name
            let incarnation: UInt64
            if let old = entries[name], old.record.settings == collection.record.settings, old.model?.version == collection.model?.version {
                incarnation = old.incarnation
            } else {
                incarnation = nextIncarnation
                nextIncarnation += 1
            }
            next[name] = Entry(record: collection.record, model: collection.model, shardMap: collection.shardMap,
                               replicas: collection.replicas, incarnation: incarnation)
        }
        entries = next
    }

    /// How stale a standby's view of collections, shard maps and replicas may be.
    static let standbyRefresh: Duration = .seconds(1)

    /// Whether this coordinator leads (always, with local files): it alone changes anything.
    nonisolated let leading: Atomic<Bool>
    public nonisolated var isLeader: Bool { leading.load(ordering: .relaxed) }

    /// Takes over from a leader that is gone: calls to workers carry `epoch` (workers refuse
    /// older leaders' from then on), the state is read afresh (the store now accepts this
    /// coordinator's writes), then workers are reconciled, jobs resumed and upkeep runs.
    public func promote(epoch: Int64 = 0) throws(CoordinatorError) {
        pool.lead(epoch: epoch)
        try reload(recovering: true)
        try store.saveWorkers(pool.endpoints)
        leading.store(true, ordering: .relaxed)
        logger.notice("leading: \(entries.count) collections, \(pool.ids.count) workers")
    }

    /// Heartbeats workers and, once, re-sends every model and list assignment (idempotent on
    /// the worker) so that a worker that lost its state while the coordinator was down is
    /// brought back in line. Runs until cancelled.
    public func run() async {
        // Standing by: heartbeats (for routing searches) and the state re-read, until promoted.
        var reloaded = ContinuousClock.now
        while !Task.isCancelled && !isLeader {
            await pool.heartbeat()
            heartbeatDone.store(true, ordering: .relaxed)
            if reloaded.duration(to: .now) >= Self.standbyRefresh {
                reloaded = .now
                do {
                    try reload()
                } catch {
                    logger.warning("standing by: cannot re-read the state: \(error)")
                }
            }
            try? await Task.sleep(for: min(heartbeatInterval, Self.standbyRefresh))
        }
        guard !Task.isCancelled else { return }
        for worker in pool.ids { Task { await self.reconcile(worker) } }
        Task { await self.resumeJobs() }
        let upkeep = Task { await self.runUpkeep() }
        defer { upkeep.cancel() }
        while !Task.isCancelled {
            await pool.heartbeat()
            heartbeatDone.store(true, ordering: .relaxed)
            try? await Task.sleep(for: heartbeatInterval)
        }
    }

    /// Upkeep beside the heartbeats, so that a repair waiting for writes to finish never delays
    /// noticing a worker go down: a pass every heartbeat interval, or at once while repairs that
    /// ran out of their round's time remain.
    private func runUpkeep() async {
        while !Task.isCancelled && !heartbeatDone.load(ordering: .relaxed) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let more = await upkeep()
            let took = started.duration(to: .now)
            if took > .seconds(10) { logger.warning("one pass of upkeep (checks, replacements, repairs, releases) took \(took)") }
            try? await Task.sleep(for: more ? .milliseconds(20) : heartbeatInterval)
        }
    }

    public nonisolated func shutdown() {
        pool.shutdown()
    }

    /// Sets the gauges a metrics scrape reports: workers by health, vectors per collection.
    public nonisolated func publishGauges() {
        var byHealth: [String: Int] = ["healthy": 0, "suspect": 0, "down": 0]
        for member in pool.snapshot() {
            switch member.health {
            case .healthy: byHealth["healthy", default: 0] += 1
            case .down: byHealth["down", default: 0] += 1
            default: byHealth["suspect", default: 0] += 1
            }
        }
        for (health, count) in byHealth {
            Gauge(label: QuiverMetrics.clusterWorkers, dimensions: [("health", health)]).record(count)
        }
        for (name, vectors) in vectorCounts.withLock({ $0 }) {
            Gauge(label: QuiverMetrics.collectionVectors, dimensions: [("collection", name)]).record(vectors)
        }
    }

    // MARK: - Collections

    func createCollection(_ config: Quiver_V1_CollectionConfig) throws(CoordinatorError) -> Quiver_V1_CollectionInfo {
        let settings = try CollectionSettings(config, workersKnown: pool.ids.count)
        guard entries[settings.name] == nil else {
            throw .alreadyExists("collection \"\(settings.name)\" already exists; drop it first or choose another name")
        }
        let record = CollectionRecord(settings: settings, createdUnixMs: unixMilliseconds())
        try store.saveRecord(record)
        entries[settings.name] = Entry(record: record, incarnation: nextIncarnation)
        nextIncarnation += 1
        logger.info("created collection \(settings.name) (d=\(settings.dimension), \(settings.metric.rawValue))")
        return info(record)
    }

    func entry(_ name: String) throws(CoordinatorError) -> Entry {
        try Self.entry(name, in: entries)
    }

    nonisolated static func entry(_ name: String, in entries: [String: Entry]) throws(CoordinatorError) -> Entry {
        guard let entry = entries[name] else {
            if name.isEmpty { throw .invalidArgument("the request names no collection") }
            throw .notFound("collection \"\(name)\" does not exist (known: \(entries.keys.sorted().joined(separator: ", ")))")
        }
        return entry
    }

    func describe(_ name: String) throws(CoordinatorError) -> Quiver_V1_CollectionInfo {
        info(try entry(name).record)
    }

    func listCollections() -> [Quiver_V1_CollectionInfo] {
        entries.keys.sorted().map { info(entries[$0]!.record) }
    }

    /// Forgets the collection here first (durably), then asks every worker to delete its data;
    /// a worker that cannot be reached keeps orphaned files, which it drops on the next Drop or
    /// a recreate with the same name supersedes by model version.
    func drop(_ name: String, ifExists: Bool) async throws(CoordinatorError) -> Bool {
        guard entries[name] != nil else {
            if ifExists { return false }
            _ = try entry(name)
            return false
        }
        try store.removeCollection(name)
        entries[name] = nil
        for job in jobs.values where job.collection == name { job.cancel() }
        let workers = pool.ids
        await withTaskGroup(of: Void.self) { group in
            for worker in workers {
                group.addTask {
                    do {
                        try await self.pool.dropCollection(name, on: worker)
                    } catch {
                        self.logger.warning("\(error)")
                    }
                }
            }
        }
        logger.info("dropped collection \(name)")
        return true
    }

    nonisolated func bytesUsed(_ name: String) -> UInt64 {
        var total: UInt64 = 0
        for member in pool.snapshot() {
            for collection in member.stats?.collections ?? [] where collection.collection == name {
                total += collection.codeBytes + collection.rawBytes
            }
        }
        return total
    }

    func info(_ record: CollectionRecord) -> Quiver_V1_CollectionInfo {
        record.wire(bytesUsed: bytesUsed(record.name))
    }

    /// Saves a changed record if the collection is still the same incarnation; false if it was
    /// dropped meanwhile.
    @discardableResult
    func update(_ name: String, incarnation: UInt64,
                _ change: (inout Entry) throws(CoordinatorError) -> Void) throws(CoordinatorError) -> Bool {
        guard var entry = entries[name], entry.incarnation == incarnation else { return false }
        try change(&entry)
        try store.saveRecord(entry.record)
        entries[name] = entry
        return true
    }

    /// What a load or search needs of collection `name`, from the latest committed state;
    /// callable from any thread.
    nonisolated func serving(_ name: String) throws(CoordinatorError) -> Serving {
        let entry: Entry
        do {
            entry = try Self.entry(name, in: entryView.withLock { $0 })
        } catch {
            // A standby's view lags the leader's by up to `standbyRefresh`: what it has not seen
            // yet is for the leader to answer (clients send such refusals again, elsewhere).
            if !isLeader { throw .unavailable("this coordinator stands by and has not seen \"\(name)\" yet (\(error.description)); the leader answers") }
            throw error
        }
        guard entry.record.phase == .ready, let model = entry.model, let shardMap = entry.shardMap else {
            if !isLeader { throw .unavailable("this coordinator stands by and does not see \"\(name)\" ready yet; the leader answers") }
            throw .failedPrecondition(notReadyMessage(entry.record))
        }
        return Serving(name: name, settings: entry.record.settings, model: model, shardMap: shardMap,
                       incarnation: entry.incarnation, replicas: entry.replicas,
                       searchDefaults: entry.record.searchDefaults, vectorCount: Int(entry.record.vectorCount))
    }

    nonisolated func notReadyMessage(_ record: CollectionRecord) -> String {
        switch record.phase {
        case .created: "collection \"\(record.name)\" is not trained yet; call Train (from a file, or from the first load) first"
        case .awaitingFirstLoad: "collection \"\(record.name)\" trains on its first load, which has not happened yet"
        case .training: "collection \"\(record.name)\" is training; retry when its state is READY"
        case .failed: "collection \"\(record.name)\" failed: \(record.error); call Train again"
        case .ready: "collection \"\(record.name)\" has no model loaded"
        }
    }

    nonisolated func nextRotation() -> Int {
        rotation.wrappingAdd(1, ordering: .relaxed).newValue
    }

    // MARK: - Workers

    /// Adds a worker, or re-announces a known one. A known id is never moved to another address
    /// unless the caller is an admin (`mayReaddress`): otherwise anyone holding the join token
    /// could point a worker's traffic at an address of their choosing.
    func registerWorker(address: String, id: String, mayReaddress: Bool) throws(CoordinatorError) -> Int {
        let address = address.trimmingWhitespace
        guard !address.isEmpty else { throw .invalidArgument("RegisterWorker needs the worker's host:port address") }
        guard address.utf8.count <= 255, id.utf8.count <= 255 else {
            throw .invalidArgument("RegisterWorker: address and worker_id are limited to 255 bytes")
        }
        guard HostAndPort(address).map({ $0.port > 0 }) == true else {
            throw .invalidArgument("RegisterWorker: address \"\(address)\" is not host:port with a non-zero port")
        }
        let endpoint = WorkerEndpoint(id: id.isEmpty ? address : id, address: address)
        if let known = pool.endpoints.first(where: { $0.id == endpoint.id }), known.address != endpoint.address, !mayReaddress {
            throw .permissionDenied("worker \(endpoint.id) is registered at \(known.address); moving it to \(endpoint.address) "
                + "needs an admin token (or remove it first with RemoveWorker)")
        }
        if try pool.add(endpoint) {
            try store.saveWorkers(pool.endpoints)
            logger.info("registered worker \(endpoint.id) at \(endpoint.address)")
            // A newcomer takes its share of the lists once every replica serves.
            rebalancePending = true
        }
        // A (re)starting worker may have lost or missed state; re-send what it should hold.
        Task { await self.reconcile(endpoint.id) }
        return pool.ids.count
    }

    /// Forgets a worker. One that still holds lists of a collection is refused: its lists must
    /// move to other workers first.
    func removeWorker(_ id: String) throws(CoordinatorError) -> Int {
        guard pool.ids.contains(id) else {
            throw .notFound("no worker \"\(id)\" is registered (known: \(pool.ids.joined(separator: ", ")))")
        }
        let holding = entries.keys.sorted().filter { name in entries[name]!.shardMap.map { !$0.lists(ownedBy: id).isEmpty } ?? false }
        guard holding.isEmpty else {
            throw .failedPrecondition("worker \(id) holds lists of \(holding.joined(separator: ", ")); drop those collections or move "
                + "the lists away before removing it")
        }
        pool.remove(id)
        try store.saveWorkers(pool.endpoints)
        logger.info("removed worker \(id)")
        return pool.ids.count
    }

    /// Installs every model and list assignment `worker` should hold (best effort, logged).
    func reconcile(_ worker: WorkerID) async {
        let serving = entries.values.compactMap { entry -> (String, IVFModel, ShardMap, ReplicaStates)? in
            guard let model = entry.model, let map = entry.shardMap else { return nil }
            return (entry.record.name, model, map, entry.replicas)
        }
        for (name, model, map, replicas) in serving {
            do {
                try await pool.installModel(ModelCodec.encode(model), version: model.version, collection: name, on: worker)
                try await pool.assignLists(ownedLists(worker, map: map, replicas: replicas), collection: name, modelVersion: model.version,
                                           shardMapVersion: map.version, on: worker)
            } catch {
                logger.warning("could not bring worker \(worker) up to date for \(name): \(error)")
            }
        }
    }

    func clusterStatus() async -> Quiver_V1_ClusterStatusResponse {
        // Fresh numbers from every worker rather than the last heartbeat's.
        await pool.heartbeat()
        var response = Quiver_V1_ClusterStatusResponse()
        response.workers = pool.snapshot().map { member in
            var status = Quiver_V1_WorkerStatus()
            status.workerID = member.endpoint.id
            status.address = member.endpoint.address
            status.health = member.endpoint.draining == true && member.health != .down ? .draining : member.health
            status.lastSeenUnixMs = member.lastSeenUnixMs
            status.folderID = member.endpoint.folderID ?? ""
            status.listsBehind = UInt32(entries.values.reduce(0) { $0 + $1.replicas.lists(behindOn: member.endpoint.id).count })
            if let stats = member.stats {
                status.listsOwned = stats.listsOwned
                status.vectors = stats.vectors
                status.bytes = stats.bytes
                status.queriesServed = stats.queriesServed
            }
            return status
        }
        response.shardMaps = entries.keys.sorted().compactMap { name in
            entries[name]!.shardMap.map { ShardMapWire.wire($0, collection: name) }
        }
        response.collections = listCollections()
        for name in entries.keys.sorted() {
            for (list, worker) in entries[name]!.replicas.behindReplicas {
                var replica = Quiver_V1_ReplicaState()
                replica.collection = name
                replica.list = list
                replica.workerID = worker
                replica.state = .behind
                response.unhealthyReplicas.append(replica)
            }
        }
        return response
    }
}

extension String {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
