import CoreMetrics
import Foundation
import GRPCCore
import Logging
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import Synchronization

/// The worker's state and operations, free of the network: every RPC of the Worker service is a
/// blocking method here taking and returning protocol messages and failing with the `RPCError`
/// the caller should see. `WorkerService` is the thin gRPC shell; tests drive this directly.
public final class ShardWorker: @unchecked Sendable {
    public struct Options: Sendable {
        /// Stable id reported in Stats (changeable later through `workerID`).
        public var workerID: String
        /// Threads for encoding and scanning.
        public var threads: Int
        public var store: CollectionStore.Options
        /// Largest response this worker produces (the transport's message limit).
        public var maxMessageBytes: Int
        /// Largest model accepted by InstallModel.
        public var maxModelBytes: Int

        public init(workerID: String, threads: Int = availableCores, store: CollectionStore.Options = .init(),
                    maxMessageBytes: Int = QuiverGRPC.maxMessageBytes, maxModelBytes: Int = 1 << 30) {
            self.workerID = workerID
            self.threads = max(1, threads)
            self.store = store
            self.maxMessageBytes = maxMessageBytes
            self.maxModelBytes = maxModelBytes
        }
    }

    public static let version = "quiver-worker 1 (protocol quiver.v1)"

    public let dataDirectory: String
    public let options: Options
    let logger: Logger
    private let started = ContinuousClock.now
    /// Guards `collections`; held only to look up or swap entries.
    private let registryLock = NSLock()
    private var collections: [String: ShardCollection] = [:]
    private var reportedID: String
    private var reportedSearchAddress = ""
    /// Serialises the rare operations that add, replace or remove collections, so two installs
    /// of one collection cannot both create it.
    private let lifecycleLock = NSLock()

    /// Random id of the data folder (see `DataFolder`).
    public let folderID: String

    private init(dataDirectory: String, options: Options, logger: Logger, collections: [String: ShardCollection],
                 folderID: String) {
        self.dataDirectory = dataDirectory
        self.options = options
        self.logger = logger
        self.collections = collections
        self.folderID = folderID
        reportedID = options.workerID
    }

    /// Ready to serve: every collection folder was replayed (done in `open`) and each installed
    /// model has its list assignment, so no search meets a collection that owns nothing yet.
    public var isServing: Bool {
        allCollections.allSatisfy { $0.currentOwnership.shardMapVersion > 0 }
    }

    /// The framed search port's address reported in Stats (empty: none), so the coordinator
    /// learns it from the worker it already dials and trusts.
    public var searchAddress: String {
        get {
            registryLock.lock()
            defer { registryLock.unlock() }
            return reportedSearchAddress
        }
        set {
            registryLock.lock()
            defer { registryLock.unlock() }
            reportedSearchAddress = newValue
        }
    }

    /// The id reported in Stats.
    public var workerID: String {
        get {
            registryLock.lock()
            defer { registryLock.unlock() }
            return reportedID
        }
        set {
            registryLock.lock()
            defer { registryLock.unlock() }
            reportedID = newValue
        }
    }

    /// Opens every collection under `dataDirectory` and replays its segments. A collection whose
    /// committed data is damaged stops the start-up: serving without it would hide the loss.
    public static func open(dataDirectory: String, options: Options, logger: Logger = Logger(label: "quiver.worker")) throws(CollectionStoreError) -> ShardWorker {
        let folderID = try DataFolder.identity(dataDirectory: dataDirectory)
        var collections: [String: ShardCollection] = [:]
        for name in try CollectionStore.existingCollections(dataDirectory: dataDirectory) {
            let opened: CollectionStore.Opened
            do {
                opened = try CollectionStore.open(dataDirectory: dataDirectory, name: name, options: options.store)
            } catch {
                // One unreadable collection must not take the others down: set it aside (kept
                // for inspection), serve the rest; the coordinator re-installs it and its lists
                // are refilled from replicas.
                let aside = try DataFolder.setAside(collection: name, dataDirectory: dataDirectory)
                logger.error("collection cannot be opened; moved aside, to be refilled from replicas",
                             metadata: ["collection": "\(name)", "error": "\(error)", "moved_to": "\(aside)"])
                continue
            }
            if opened.truncatedBytes > 0 {
                logger.warning("cut off a torn final record (never acknowledged)",
                               metadata: ["collection": "\(name)", "bytes": "\(opened.truncatedBytes)"])
            }
            for damage in opened.damage {
                logger.error("skipped a damaged committed record; its rows are missing until repaired from a replica",
                             metadata: ["collection": "\(name)", "damage": "\(damage)"])
            }
            logger.info("opened collection", metadata: ["collection": "\(name)", "rows": "\(opened.index.liveCount)",
                                                         "model_version": "\(opened.store.model.version)"])
            collections[name] = ShardCollection(store: opened.store, index: opened.index, damagedRecords: opened.damage.count)
        }
        return ShardWorker(dataDirectory: dataDirectory, options: options, logger: logger, collections: collections,
                           folderID: folderID)
    }

    func collection(_ name: String) throws(RPCError) -> ShardCollection {
        guard !name.isEmpty else { throw .invalidArgument("collection name is empty") }
        registryLock.lock()
        defer { registryLock.unlock() }
        guard let collection = collections[name] else {
            throw .notFound("collection \"\(name)\" has no model on this worker; install its model first (InstallModel)")
        }
        return collection
    }

    private func register(_ collection: ShardCollection?, as name: String) {
        registryLock.lock()
        defer { registryLock.unlock() }
        collections[name] = collection
    }

    private var allCollections: [ShardCollection] {
        registryLock.lock()
        defer { registryLock.unlock() }
        return collections.values.sorted { $0.name < $1.name }
    }

    // MARK: - InstallModel

    /// Installs `bytes` (ModelCodec form) as `collection`'s model `version`. The same version again
    /// changes nothing; a different version replaces the model only while no rows are stored.
    public func installModel(collection name: String, version: UInt64, bytes: [UInt8]) throws(RPCError) -> Quiver_V1_InstallModelResponse {
        do {
            try CollectionStore.validate(name: name)
        } catch {
            throw RPCError(error)
        }
        let model: IVFModel
        do {
            model = try ModelCodec.decode(bytes)
        } catch {
            throw .invalidArgument("InstallModel for \"\(name)\": \(error)")
        }
        guard model.version == version else {
            throw .invalidArgument("InstallModel for \"\(name)\": the chunks say model_version \(version) but the model bytes hold version \(model.version)")
        }
        var response = Quiver_V1_InstallModelResponse()
        response.modelVersion = version
        response.bytesReceived = UInt64(bytes.count)

        lifecycleLock.lock()
        defer { lifecycleLock.unlock() }
        if let existing = try? collection(name) {
            if existing.model.version == version {
                response.alreadyInstalled = true
                return response
            }
            let successor: ShardCollection
            do {
                successor = try existing.replacingModel(with: model)
            } catch {
                throw RPCError(error, collection: name)
            }
            register(successor, as: name)
            logger.info("replaced model", metadata: ["collection": "\(name)", "model_version": "\(version)"])
            return response
        }
        do {
            let store = try CollectionStore.create(dataDirectory: dataDirectory, name: name, model: model, options: options.store)
            register(ShardCollection(store: store, index: IVFIndex(model: model)), as: name)
        } catch {
            throw RPCError(error)
        }
        logger.info("installed model", metadata: ["collection": "\(name)", "model_version": "\(version)"])
        return response
    }

    // MARK: - AssignLists

    public func assignLists(_ request: Quiver_V1_AssignListsRequest) throws(RPCError) -> Quiver_V1_AssignListsResponse {
        let collection = try collection(request.collection)
        try checkModelVersion(request.modelVersion, of: collection, rpc: "AssignLists")
        let lists = try unpack(request.listIds, as: Int32.self, field: "list_ids")
        let nlist = collection.model.nlist
        for (position, list) in lists.enumerated() {
            guard list >= 0, Int(list) < nlist else {
                throw .invalidArgument("AssignLists: list_ids[\(position)] = \(list) is not a list of this model (nlist \(nlist))")
            }
            guard position == 0 || lists[position - 1] < list else {
                throw .invalidArgument("AssignLists: list_ids must be strictly ascending; list_ids[\(position)] = \(list) follows \(lists[position - 1])")
            }
        }

        lifecycleLock.lock()
        defer { lifecycleLock.unlock() }
        let current = collection.currentOwnership
        guard request.shardMapVersion >= current.shardMapVersion else {
            throw .failedPrecondition("AssignLists: shard map version \(request.shardMapVersion) is older than this worker's "
                + "\(current.shardMapVersion) for \"\(collection.name)\"; refresh the shard map and retry")
        }
        do throws(WorkerWriteError) {
            try collection.assign(shardMapVersion: request.shardMapVersion, lists: lists)
            if request.releaseUnowned {
                // Lists given up are emptied durably, then the space goes in one compaction.
                let kept = Set(lists)
                let holding = collection.read { index, _ in
                    index.lists.indices.filter { index.lists[$0].count > 0 && !kept.contains(Int32($0)) }
                }
                for list in holding { try collection.replace(list: ListExport(list: list, ids: [], codes: [], vectors: [])) }
                if !holding.isEmpty {
                    _ = try collection.compact()
                    logger.info("released lists", metadata: ["collection": "\(collection.name)", "lists": "\(holding.count)"])
                }
            }
        } catch {
            throw RPCError(error, collection: collection.name)
        }
        let statistics = collection.statistics
        var response = Quiver_V1_AssignListsResponse()
        response.shardMapVersion = request.shardMapVersion
        response.listsOwned = UInt32(lists.count)
        response.vectors = UInt64(statistics.vectors)
        return response
    }

    // MARK: - Stats and DropCollection

    /// Sets the gauges a metrics scrape reports: vectors, bytes and lists per collection.
    public func publishGauges() {
        for collection in allCollections {
            let statistics = collection.statistics
            let dimensions = [("collection", collection.name)]
            Gauge(label: QuiverMetrics.workerVectors, dimensions: dimensions).record(statistics.vectors)
            Gauge(label: QuiverMetrics.workerBytes, dimensions: dimensions + [("kind", "codes")]).record(statistics.codeBytes)
            Gauge(label: QuiverMetrics.workerBytes, dimensions: dimensions + [("kind", "raw")]).record(statistics.rawBytes)
            Gauge(label: QuiverMetrics.workerListsOwned, dimensions: dimensions).record(statistics.ownership.ownedCount)
        }
    }

    public func stats(_ request: Quiver_V1_WorkerStatsRequest) -> Quiver_V1_WorkerStatsResponse {
        var response = Quiver_V1_WorkerStatsResponse()
        response.workerID = workerID
        response.searchAddress = searchAddress
        response.version = Self.version
        response.folderID = folderID
        let elapsed = ContinuousClock.now - started
        response.uptimeSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        for collection in allCollections where request.collection.isEmpty || collection.name == request.collection {
            let statistics = collection.statistics
            var entry = Quiver_V1_WorkerCollectionStats()
            entry.collection = collection.name
            entry.modelVersion = collection.model.version
            entry.shardMapVersion = statistics.ownership.shardMapVersion
            entry.listsOwned = UInt32(statistics.ownership.ownedCount)
            entry.vectors = UInt64(statistics.vectors)
            entry.codeBytes = UInt64(statistics.codeBytes)
            entry.rawBytes = UInt64(statistics.rawBytes)
            entry.queriesServed = collection.queriesServed.load(ordering: .relaxed)
            entry.damagedRecords = UInt32(clamping: collection.damagedRecords)
            entry.deadRows = UInt64(collection.deadRows)
            response.collections.append(entry)
            response.vectors += entry.vectors
            response.listsOwned += entry.listsOwned
            response.bytes += entry.codeBytes + entry.rawBytes
            response.queriesServed += entry.queriesServed
        }
        return response
    }

    public func dropCollection(_ request: Quiver_V1_WorkerDropCollectionRequest) throws(RPCError) -> Quiver_V1_WorkerDropCollectionResponse {
        lifecycleLock.lock()
        defer { lifecycleLock.unlock() }
        var response = Quiver_V1_WorkerDropCollectionResponse()
        guard let collection = try? collection(request.collection) else { return response }
        let freed: Int
        do {
            freed = try collection.drop()
        } catch {
            throw RPCError(error, collection: request.collection)
        }
        register(nil, as: request.collection)
        logger.info("dropped collection", metadata: ["collection": "\(request.collection)"])
        response.existed = true
        response.bytesFreed = UInt64(freed)
        return response
    }

    /// Records every collection's committed length, so the next start checks all of it strictly.
    public func checkpoint() {
        for collection in allCollections {
            do {
                try collection.checkpoint()
            } catch {
                logger.error("checkpoint failed", metadata: ["collection": "\(collection.name)", "error": "\(error)"])
            }
        }
    }

    // MARK: - Shared checks

    func checkModelVersion(_ version: UInt64, of collection: ShardCollection, rpc: String) throws(RPCError) {
        guard version == collection.model.version else {
            throw .failedPrecondition("\(rpc): collection \"\(collection.name)\" has model version \(collection.model.version) "
                + "on this worker, the request is for version \(version); install that model first or refresh")
        }
    }

    func unpack<Element: BitwiseCopyable>(_ data: Data, as type: Element.Type, count: Int? = nil, field: String) throws(RPCError) -> [Element] {
        do {
            return try WireArrays.unpack(data, as: type, count: count, field: field)
        } catch {
            throw .invalidArgument(error.description)
        }
    }
}

extension RPCError {
    init(_ error: WorkerWriteError, collection: String) {
        switch error {
        case .retired:
            self.init(code: .failedPrecondition, message: "collection \"\(collection)\" was dropped or got a new model while "
                + "this request was in flight; refresh and retry")
        case .store(let error):
            self.init(error)
        case .inconsistent(let message):
            self.init(code: .internalError, message: message)
        case .invalid(let message):
            self.init(code: .invalidArgument, message: message)
        }
    }
}
