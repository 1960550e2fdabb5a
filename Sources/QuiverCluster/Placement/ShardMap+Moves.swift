/// Changing who holds a shard: replacing a dead worker, draining one, giving a new one a share.
/// Each change gives the shard one new replica (behind until repaired) in place of an old one.
extension ShardMap {
    /// The map with `old` replaced by `new` in `shard`'s replicas, at `version`.
    public func moving(shard: Int, from old: WorkerID, to new: WorkerID, version: UInt64) throws(PlacementError) -> ShardMap {
        guard shardReplicas.indices.contains(shard), let position = shardReplicas[shard].firstIndex(of: old) else {
            throw .inconsistent("shard \(shard) has no replica on \(old)")
        }
        guard !shardReplicas[shard].contains(new) else { throw .inconsistent("shard \(shard) already has a replica on \(new)") }
        var replicas = shardReplicas
        replicas[shard][position] = new
        return try ShardMap(version: version, modelVersion: modelVersion, replicationFactor: replicationFactor,
                            shardOfList: shardOfList, shardReplicas: replicas, shardLoads: shardLoads)
    }

    /// Shards with a replica on `worker`.
    public func shards(on worker: WorkerID) -> [Int] {
        shardReplicas.indices.filter { shardReplicas[$0].contains(worker) }
    }

    /// Lists of `shard`, ascending.
    public func lists(ofShard shard: Int) -> [Int32] {
        shardOfList.indices.filter { shardOfList[$0] == shard }.map(Int32.init)
    }

    /// Expected entries held by each worker of `workers` (those outside the map hold none).
    public func loads(of workers: [WorkerID]) -> [WorkerID: Int] {
        var loads = Dictionary(uniqueKeysWithValues: workers.map { ($0, 0) })
        for (shard, replicas) in shardReplicas.enumerated() {
            for worker in replicas where loads[worker] != nil { loads[worker]! += shardLoads[shard] }
        }
        return loads
    }

    /// The least-loaded of `candidates` that does not hold `shard` yet (ties: by id); nil when
    /// every candidate holds it already.
    public func replacement(forShard shard: Int, candidates: [WorkerID]) -> WorkerID? {
        let loads = loads(of: candidates)
        return candidates.filter { !shardReplicas[shard].contains($0) }
            .min { (loads[$0]!, $0) < (loads[$1]!, $1) }
    }

    /// Moves that even out a newcomer: while the most loaded worker of `workers` holds more than
    /// one shard's worth above the least loaded, one of its shards moves to the least loaded.
    public func rebalancingMoves(workers: [WorkerID], limit: Int = 64) -> [(shard: Int, from: WorkerID, to: WorkerID)] {
        var map = self
        var moves: [(shard: Int, from: WorkerID, to: WorkerID)] = []
        while moves.count < limit {
            let loads = map.loads(of: workers)
            guard let heaviest = workers.max(by: { (loads[$0]!, $1) < (loads[$1]!, $0) }),
                  let lightest = workers.min(by: { (loads[$0]!, $0) < (loads[$1]!, $1) }) else { break }
            let candidates = map.shards(on: heaviest).filter { !map.shardReplicas[$0].contains(lightest) }
            guard let shard = candidates.min(by: { map.shardLoads[$0] < map.shardLoads[$1] }),
                  loads[heaviest]! - map.shardLoads[shard] >= loads[lightest]! + map.shardLoads[shard],
                  let next = try? map.moving(shard: shard, from: heaviest, to: lightest, version: map.version) else { break }
            moves.append((shard, heaviest, lightest))
            map = next
        }
        return moves
    }
}
