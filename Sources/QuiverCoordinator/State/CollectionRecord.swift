import QuiverIndex
import QuiverProtocol

/// Lifecycle of a collection (mirrors `Quiver_V1_CollectionState`, persisted by name).
enum CollectionPhase: String, Codable, Sendable {
    case created, awaitingFirstLoad, training, ready, failed

    var wire: Quiver_V1_CollectionState {
        switch self {
        case .created: .created
        case .awaitingFirstLoad: .awaitingFirstLoad
        case .training: .training
        case .ready: .ready
        case .failed: .failed
        }
    }
}

/// Whether a collection's rows carry their own ids; fixed by the first load, since mixing
/// caller ids with assigned ones could hand out an id twice.
enum IDSource: String, Codable, Sendable {
    case undecided, caller, assigned
}

/// How a deferred (first-load) training is to run.
struct FirstLoadTraining: Codable, Sendable, Equatable {
    var sampleRows: Int
    var iterations: Int
    var seed: UInt64
}

/// Validated, resolved creation settings of a collection. Immutable after creation.
struct CollectionSettings: Codable, Sendable, Equatable {
    static let namePattern = "1-128 characters of A-Z a-z 0-9 _ . -"

    var name: String
    var dimension: Int
    var metric: Metric
    /// 0 = chosen at training time (2√n of the data size).
    var requestedNlist: Int
    var subspaces: Int
    var bitsPerCode: Int
    /// nil = plain (isotropic) PQ.
    var anisotropicThreshold: Float?
    /// The precision asked for; with `rawPrecisionAutomatic` the one training picks instead.
    var rawVectors: RawVectorPrecision
    /// The config named no precision: training picks it from the sample
    /// (`RawVectorPrecision.automatic`), float16 unless the data needs float32. nil (records
    /// from before it existed) = false.
    var rawPrecisionAutomatic: Bool?
    var replicationFactor: Int
    /// Replicas that must store a write before it is acknowledged; nil or 0 = a majority.
    var writeQuorumSetting: Int?
    /// recall@10 a search without knobs aims for; nil = `defaultRecallTarget`.
    var recallTargetSetting: Double?

    static let defaultRecallTarget = 0.95
    var recallTarget: Double { recallTargetSetting ?? Self.defaultRecallTarget }

    /// The targets calibrated after training: the collection's own and the usual others a
    /// search may name (recall_target), ascending.
    var calibratedTargets: [Double] { Array(Set([0.9, 0.95, 0.99, recallTarget])).sorted() }

    var storesRawVectors: Bool { rawVectors != .none }

    /// The write quorum in effect.
    var writeQuorum: Int { ShardMap.writeQuorum(writeQuorumSetting ?? 0, replicationFactor: replicationFactor) }

    /// Checks a CreateCollection config and fills in the defaults.
    init(_ config: Quiver_V1_CollectionConfig, workersKnown: Int) throws(CoordinatorError) {
        let name = config.name
        guard Self.isValidName(name) else {
            throw .invalidArgument("collection name \"\(name)\" is not valid: use \(Self.namePattern)")
        }
        guard config.dimension > 0 else { throw .invalidArgument("dimension must be positive, got 0") }
        guard config.dimension <= 65_536 else {
            throw .invalidArgument("dimension \(config.dimension) is larger than the supported 65536")
        }
        let dimension = Int(config.dimension)
        let metric: Metric
        switch config.metric {
        case .innerProduct: metric = .innerProduct
        case .l2: metric = .l2
        case .cosine: metric = .cosine
        case .unspecified, .UNRECOGNIZED:
            throw .invalidArgument("metric must be set: METRIC_INNER_PRODUCT, METRIC_L2 or METRIC_COSINE")
        }
        let bits = config.pqNbits == 0 ? 4 : Int(config.pqNbits)
        guard bits == 4 || bits == 8 else {
            throw .invalidArgument("pq_nbits must be 4 (FastScan) or 8, got \(bits)")
        }
        let subspaces = config.pqM == 0
            ? IVFConfiguration.defaultSubspaces(dimension: dimension, encoding: .fastScan)
            : Int(config.pqM)
        guard subspaces <= dimension, dimension % subspaces == 0 else {
            throw .invalidArgument("pq_m \(subspaces) must divide the dimension \(dimension) (for example \(dimension % 2 == 0 ? dimension / 2 : dimension))")
        }
        let threshold = config.anisotropicThreshold
        guard threshold.isFinite else { throw .invalidArgument("anisotropic_threshold must be a finite number, got \(threshold)") }
        let anisotropic: Float?
        if threshold == 0 {
            // Score-aware quantization is what makes 4-bit codes rank well for inner products.
            anisotropic = metric.usesInnerProduct ? IVFConfiguration.defaultAnisotropicThreshold : nil
        } else if threshold < 0 {
            anisotropic = nil
        } else {
            guard metric.usesInnerProduct else {
                throw .invalidArgument("anisotropic_threshold applies to inner product and cosine, not L2; leave it at 0")
            }
            guard threshold < 1 else {
                throw .invalidArgument("anisotropic_threshold is a fraction of the vector norm and must be below 1, got \(threshold)")
            }
            anisotropic = threshold
        }
        let raw: RawVectorPrecision
        var automatic = false
        if config.storeRawVectors {
            switch config.rawVectorPrecision {
            case .unspecified:
                raw = .float16
                automatic = true
            case .float32: raw = .float32
            case .float16: raw = .float16
            case .UNRECOGNIZED(let value): throw .invalidArgument("raw_vector_precision \(value) is not known; use FLOAT32 or FLOAT16")
            }
        } else {
            raw = .none
        }
        let replication = max(1, Int(config.replicationFactor))
        guard replication == 1 || replication <= workersKnown else {
            throw .invalidArgument("replication_factor \(replication) exceeds the \(workersKnown) registered workers")
        }
        guard config.nlist <= 1 << 22 else { throw .invalidArgument("nlist \(config.nlist) is larger than the supported 4194304") }
        guard config.writeQuorum <= UInt32(replication) else {
            throw .invalidArgument("write_quorum \(config.writeQuorum) exceeds the replication factor \(replication)")
        }
        let recall = Double(config.recallTarget)
        guard recall.isFinite, recall >= 0, recall < 1 else {
            throw .invalidArgument("recall_target is a recall@10 between 0 and 1 (0 = \(Self.defaultRecallTarget)), got \(config.recallTarget)")
        }
        // Rounded to what a float carries, so the target shown is the one asked for.
        recallTargetSetting = recall == 0 ? nil : (recall * 10_000).rounded() / 10_000
        self.name = name
        self.dimension = dimension
        self.metric = metric
        self.requestedNlist = Int(config.nlist)
        self.subspaces = subspaces
        self.bitsPerCode = bits
        self.anisotropicThreshold = anisotropic
        self.rawVectors = raw
        self.rawPrecisionAutomatic = automatic ? true : nil
        self.replicationFactor = replication
        writeQuorumSetting = Int(config.writeQuorum)
    }

    static func isValidName(_ name: String) -> Bool {
        guard (1 ... 128).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
        }
    }

    /// The index configuration a training run on `sample` uses. Inner-product metrics spill
    /// (SOAR, λ = 1): on hard data it reaches the same recall with several times fewer lists probed.
    func indexConfiguration(nlist: Int, iterations: Int, seed: UInt64, sample: Matrix) -> IVFConfiguration {
        let raw = rawPrecisionAutomatic == true ? RawVectorPrecision.automatic(for: sample, metric: metric) : rawVectors
        return IVFConfiguration(dimension: dimension, metric: metric, nlist: nlist,
                                encoding: bitsPerCode == 8 ? .pq8 : .fastScan, subspaces: subspaces,
                                anisotropicThreshold: anisotropicThreshold,
                                spillLambda: metric.usesInnerProduct ? 1 : nil, rawVectors: raw,
                                trainingIterations: iterations, seed: seed)
    }

    var wire: Quiver_V1_CollectionConfig {
        var config = Quiver_V1_CollectionConfig()
        config.name = name
        config.dimension = UInt32(dimension)
        config.metric = switch metric {
        case .innerProduct: .innerProduct
        case .l2: .l2
        case .cosine: .cosine
        }
        config.nlist = UInt32(requestedNlist)
        config.pqM = UInt32(subspaces)
        config.pqNbits = UInt32(bitsPerCode)
        config.anisotropicThreshold = anisotropicThreshold ?? 0
        config.storeRawVectors = storesRawVectors
        config.rawVectorPrecision = rawPrecisionAutomatic == true ? .unspecified : rawVectors.wire
        config.replicationFactor = UInt32(replicationFactor)
        config.writeQuorum = UInt32(writeQuorum)
        config.recallTarget = Float(recallTarget)
        return config
    }
}

extension RawVectorPrecision {
    var wire: Quiver_V1_VectorPrecision {
        switch self {
        case .none: .unspecified
        case .float32: .float32
        case .float16: .float16
        }
    }
}

/// Everything persisted about one collection besides its model and shard map.
struct CollectionRecord: Codable, Sendable, Equatable {
    var settings: CollectionSettings
    var phase: CollectionPhase = .created
    var modelVersion: UInt64 = 0
    var nlist: Int = 0
    var shardMapVersion: UInt64 = 0
    /// Rows acknowledged by every replica (counted once).
    var vectorCount: UInt64 = 0
    /// Next id handed to rows loaded without ids; reserved (and persisted) before use, so an id
    /// is never given out twice even if a load fails or the coordinator restarts.
    var nextID: Int64 = 0
    var idSource: IDSource = .undecided
    var createdUnixMs: Int64
    var error: String = ""
    var firstLoad: FirstLoadTraining?
    /// The last batch counted of each recent named load (load id → its rows): the count and
    /// the load's ledger are two writes, and a batch counted just before a crash (its ledger
    /// not yet saved) is folded into the ledger before the next batch of the load is counted,
    /// so sending it again (in whatever order the resent batches finish) does not count it twice.
    var countedBatches: [String: CountedBatch]?
    /// Search defaults calibrated after training (nil before, or when calibration failed: the
    /// fixed defaults of `SearchSettings` then apply).
    var searchDefaults: SearchDefaults?
    /// The raw vector precision training picked when the settings left it automatic.
    var rawVectorsChosen: RawVectorPrecision?

    /// Settings calibrated per recall target on an index of `indexedRows` training rows.
    struct SearchDefaults: Codable, Sendable, Equatable {
        var indexedRows: Int
        /// Ascending by target.
        var levels: [Calibration.Settings]

        /// The level for `target` (the lowest calibrated at or above it, else the highest), its
        /// re-rank depth grown from the indexed rows to a collection of `rows`.
        func settings(for target: Double, rows: Int) -> Calibration.Settings? {
            guard let level = levels.first(where: { $0.target >= target - 1e-6 }) ?? levels.last else { return nil }
            return scaled(level, rows: rows)
        }

        private func scaled(_ level: Calibration.Settings, rows: Int) -> Calibration.Settings {
            var scaled = level.scaled(fromRows: indexedRows, toRows: rows)
            scaled.reorderK = min(scaled.reorderK, SearchSettings.maxReorderK)
            return scaled
        }

        func wire(rows: Int) -> [Quiver_V1_SearchDefaults] {
            levels.map { level in
                let settings = scaled(level, rows: rows)
                var out = Quiver_V1_SearchDefaults()
                out.recallTarget = Float(settings.target)
                out.nprobe = UInt32(settings.nprobe)
                out.reorderK = UInt32(settings.reorderK)
                out.sampleRecall = Float(settings.sampleRecall)
                out.reached = settings.reached
                out.sampleQueries = UInt32(settings.sampleQueries)
                out.sampleRows = UInt64(indexedRows)
                return out
            }
        }
    }

    struct CountedBatch: Codable, Sendable, Equatable {
        var firstRow: Int
        var rows: Int
    }

    init(settings: CollectionSettings, createdUnixMs: Int64) {
        self.settings = settings
        self.createdUnixMs = createdUnixMs
    }

    var name: String { settings.name }

    func wire(bytesUsed: UInt64) -> Quiver_V1_CollectionInfo {
        var info = Quiver_V1_CollectionInfo()
        info.config = settings.wire
        if let rawVectorsChosen { info.config.rawVectorPrecision = rawVectorsChosen.wire }
        info.state = phase.wire
        info.modelVersion = modelVersion
        info.nlist = UInt32(nlist)
        info.shardMapVersion = shardMapVersion
        info.vectorCount = vectorCount
        info.bytesUsed = bytesUsed
        info.createdUnixMs = createdUnixMs
        info.error = error
        info.searchDefaults = searchDefaults?.wire(rows: Int(vectorCount)) ?? []
        return info
    }
}

extension ShardMapWire {
    static func wire(_ map: ShardMap, collection: String) -> Quiver_V1_ShardMap {
        var out = Quiver_V1_ShardMap()
        out.collection = collection
        out.version = map.version
        out.modelVersion = map.modelVersion
        out.replicationFactor = UInt32(map.replicationFactor)
        out.assignments = map.workers.map { worker in
            var lists = Quiver_V1_WorkerLists()
            lists.workerID = worker
            lists.listIds = WireArrays.pack(map.lists(ownedBy: worker))
            return lists
        }
        return out
    }
}

enum ShardMapWire {}

import QuiverCluster
