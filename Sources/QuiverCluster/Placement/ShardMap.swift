/// A worker's stable identity, as registered with the coordinator (by default its address).
public typealias WorkerID = String

/// Which workers hold which inverted lists of one collection under one model.
///
/// Lists are grouped into shards balanced by expected size, and each shard lives on
/// `replicationFactor` distinct workers. The map is a plain value: the same inputs always give
/// the same map, so a restarted coordinator (or a test) can rebuild and compare it.
public struct ShardMap: Sendable, Equatable {
    /// Bumped on every change of ownership; workers reject older versions.
    public let version: UInt64
    /// The model whose list ids this map refers to.
    public let modelVersion: UInt64
    public let replicationFactor: Int
    /// Shard of each list (index = list id).
    public let shardOfList: [Int]
    /// Distinct workers holding each shard, preferred replica first.
    public let shardReplicas: [[WorkerID]]
    /// Expected entries per shard (sum of the expected sizes of its lists).
    public let shardLoads: [Int]

    /// Ascending lists per worker, derived once because routing asks for them per request.
    private let listsByWorker: [WorkerID: [Int32]]

    public init(version: UInt64, modelVersion: UInt64, replicationFactor: Int, shardOfList: [Int],
                shardReplicas: [[WorkerID]], shardLoads: [Int]) throws(PlacementError) {
        guard replicationFactor >= 1 else { throw .invalidReplicationFactor(replicationFactor, workers: 0) }
        guard shardLoads.count == shardReplicas.count else {
            throw .inconsistent("\(shardLoads.count) shard loads for \(shardReplicas.count) shards")
        }
        for (shard, replicas) in shardReplicas.enumerated() {
            guard replicas.count == replicationFactor, Set(replicas).count == replicas.count else {
                throw .inconsistent("shard \(shard) has replicas \(replicas); expected \(replicationFactor) distinct workers")
            }
        }
        var listsByWorker: [WorkerID: [Int32]] = [:]
        for replicas in shardReplicas {
            for worker in replicas where listsByWorker[worker] == nil { listsByWorker[worker] = [] }
        }
        for (list, shard) in shardOfList.enumerated() {
            guard shardReplicas.indices.contains(shard) else {
                throw .inconsistent("list \(list) is placed on shard \(shard), but there are \(shardReplicas.count) shards")
            }
            for worker in shardReplicas[shard] { listsByWorker[worker, default: []].append(Int32(list)) }
        }
        self.version = version
        self.modelVersion = modelVersion
        self.replicationFactor = replicationFactor
        self.shardOfList = shardOfList
        self.shardReplicas = shardReplicas
        self.shardLoads = shardLoads
        self.listsByWorker = listsByWorker
    }

    public var nlist: Int { shardOfList.count }
    public var shardCount: Int { shardReplicas.count }

    /// Every worker holding at least one shard, sorted.
    public var workers: [WorkerID] { listsByWorker.keys.sorted() }

    /// The workers holding `list`, preferred replica first.
    public func replicas(ofList list: Int) -> [WorkerID] { shardReplicas[shardOfList[list]] }

    /// Ascending ids of the lists `worker` holds (empty for a worker outside the map).
    public func lists(ownedBy worker: WorkerID) -> [Int32] { listsByWorker[worker] ?? [] }

    /// Places `listSizes.count` lists on `workers`.
    ///
    /// Lists go largest first into the currently lightest shard (ties: fewer lists, then lower
    /// index), which keeps the expected entries per shard within one list of each other. With
    /// one shard per worker, shard `s` lives on workers `s, s+1, …, s+R−1` (mod the worker
    /// count) of the sorted worker set, so every worker holds exactly `R` shards and the
    /// replicas of a shard are distinct by construction.
    public static func place(version: UInt64, modelVersion: UInt64, listSizes: [Int], workers: [WorkerID],
                             replicationFactor: Int) throws(PlacementError) -> ShardMap {
        let workers = Array(Set(workers)).sorted()
        guard !workers.isEmpty else { throw .noWorkers }
        guard replicationFactor >= 1, replicationFactor <= workers.count else {
            throw .invalidReplicationFactor(replicationFactor, workers: workers.count)
        }
        guard !listSizes.isEmpty else { throw .inconsistent("a model has at least one list") }
        let shardCount = workers.count
        let order = listSizes.indices.sorted { a, b in
            listSizes[a] != listSizes[b] ? listSizes[a] > listSizes[b] : a < b
        }
        var loads = [Int](repeating: 0, count: shardCount)
        var listCounts = [Int](repeating: 0, count: shardCount)
        var shardOfList = [Int](repeating: 0, count: listSizes.count)
        for list in order {
            var lightest = 0
            for shard in 1 ..< shardCount
            where (loads[shard], listCounts[shard]) < (loads[lightest], listCounts[lightest]) {
                lightest = shard
            }
            shardOfList[list] = lightest
            loads[lightest] += max(0, listSizes[list])
            listCounts[lightest] += 1
        }
        let replicas = (0 ..< shardCount).map { shard in
            (0 ..< replicationFactor).map { workers[(shard + $0) % workers.count] }
        }
        return try ShardMap(version: version, modelVersion: modelVersion, replicationFactor: replicationFactor,
                            shardOfList: shardOfList, shardReplicas: replicas, shardLoads: loads)
    }
}

extension ShardMap: Codable {
    private enum CodingKeys: String, CodingKey {
        case version, modelVersion, replicationFactor, shardOfList, shardReplicas, shardLoads
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(version: container.decode(UInt64.self, forKey: .version),
                      modelVersion: container.decode(UInt64.self, forKey: .modelVersion),
                      replicationFactor: container.decode(Int.self, forKey: .replicationFactor),
                      shardOfList: container.decode([Int].self, forKey: .shardOfList),
                      shardReplicas: container.decode([[WorkerID]].self, forKey: .shardReplicas),
                      shardLoads: container.decode([Int].self, forKey: .shardLoads))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(version, forKey: .version)
        try container.encode(modelVersion, forKey: .modelVersion)
        try container.encode(replicationFactor, forKey: .replicationFactor)
        try container.encode(shardOfList, forKey: .shardOfList)
        try container.encode(shardReplicas, forKey: .shardReplicas)
        try container.encode(shardLoads, forKey: .shardLoads)
    }
}

/// Why lists could not be placed.
public enum PlacementError: Error, Equatable, CustomStringConvertible, Sendable {
    case noWorkers
    case invalidReplicationFactor(Int, workers: Int)
    case inconsistent(String)

    public var description: String {
        switch self {
        case .noWorkers:
            "no workers are registered; start workers with --coordinator or pass --workers to the coordinator"
        case .invalidReplicationFactor(let factor, let workers):
            "replication factor \(factor) needs at least that many workers, \(workers) registered"
        case .inconsistent(let detail):
            "inconsistent shard map: \(detail)"
        }
    }
}
