import Foundation
import QuiverCluster
import QuiverIndex
import QuiverProtocol
import QuiverStorage

/// Keeping every list's replicas complete: marking replicas behind, repairing them from serving
/// replicas, noticing workers that lost or damaged their data, replacing workers that stay
/// down, draining, rebalancing onto newcomers, and releasing lists a worker no longer owns.
extension Coordinator {
    // MARK: - Replica states

    func replicaStates(_ name: String) -> ReplicaStates? { entries[name]?.replicas }

    /// Marks replicas behind, durably, before whatever made them behind is acknowledged.
    func markBehind(_ name: String, incarnation: UInt64, _ pairs: [(list: Int32, worker: WorkerID)],
                    reason: String) throws(CoordinatorError) {
        guard var entry = entries[name], entry.incarnation == incarnation else { return }
        guard entry.replicas.markBehind(pairs) else { return }
        try store.saveReplicas(entry.replicas, collection: name)
        entries[name] = entry
        let workers = Set(pairs.map(\.worker)).sorted()
        logger.warning("\(pairs.count) list replicas of \(name) on \(workers.joined(separator: ", ")) are behind: \(reason)")
    }

    private func markServing(_ name: String, incarnation: UInt64, _ pairs: [(list: Int32, worker: WorkerID)]) {
        guard var entry = entries[name], entry.incarnation == incarnation, !pairs.isEmpty else { return }
        for (list, worker) in pairs { entry.replicas.markServing(list: list, worker: worker) }
        do {
            try store.saveReplicas(entry.replicas, collection: name)
        } catch {
            logger.error("cannot persist the replica states of \(name): \(error)")
            return
        }
        entries[name] = entry
    }

    private func saveReplicas(_ name: String, _ change: (inout ReplicaStates) -> Void) throws(CoordinatorError) {
        guard var entry = entries[name] else { return }
        change(&entry.replicas)
        try store.saveReplicas(entry.replicas, collection: name)
        entries[name] = entry
    }

    /// One pass of upkeep. True when repairs remain that this pass ran out of time for.
    func upkeep() async -> Bool {
        await checkWorkers()
        await replaceDeadWorkers()
        let more = await repairRound()
        await releaseRound()
        if rebalancePending {
            let moved = await rebalance()
            // Done once a pass with every replica serving finds nothing more to move.
            let quiet = pool.down.isEmpty && entries.values.allSatisfy { $0.replicas.behind.isEmpty && $0.replicas.releasing.isEmpty }
            if !moved && quiet { rebalancePending = false }
        }
        return more
    }

    // MARK: - Workers that lost or damaged data

    /// Compares what every reachable worker reports with what it should hold: a new data folder,
    /// a missing collection or a wrong model means its lists are all behind; damaged records
    /// mean the lists that differ from another replica are.
    func checkWorkers() async {
        for member in pool.snapshot() where member.health == .healthy || member.folderReplaced {
            guard let stats = member.stats else { continue }
            let worker = member.endpoint.id
            if let known = member.endpoint.folderID, !stats.folderID.isEmpty, known != stats.folderID {
                logger.error("worker \(worker) came back with another data folder (\(known) → \(stats.folderID)): refilling every list it holds")
                // Until its lists are recorded behind it stays out of searches (tried again next pass).
                guard markAllBehind(on: worker, reason: "its data folder was replaced") else { continue }
                await reconcile(worker)
            }
            if member.endpoint.folderID != stats.folderID, !stats.folderID.isEmpty {
                pool.setFolderID(stats.folderID, of: worker)
                try? store.saveWorkers(pool.endpoints)
            }
            if member.folderReplaced { pool.clearFolderReplaced(worker) }
            for (name, entry) in entries {
                // A training in flight installs its model on workers before committing it here.
                guard let map = entry.shardMap, let model = entry.model, !map.lists(ownedBy: worker).isEmpty,
                      !entry.trainingClaimed else { continue }
                var held = stats.collections.first { $0.collection == name }
                if held == nil || held!.modelVersion != model.version || held!.shardMapVersion == 0 {
                    // The heartbeat's numbers may predate a training that installed the model
                    // since: act only on what the worker says now, after the model was committed.
                    guard let now = try? await pool.freshStats(of: worker), let current = entries[name],
                          current.incarnation == entry.incarnation, current.model?.version == model.version,
                          !current.trainingClaimed else { continue }
                    held = now.collections.first { $0.collection == name }
                }
                if let held, held.modelVersion != model.version {
                    // Rows of another incarnation or model: they must go before this one installs.
                    logger.warning("worker \(worker) holds \(name) with model \(held.modelVersion), not \(model.version): dropping its copy")
                    try? await pool.dropCollection(name, on: worker)
                }
                if held == nil || held!.modelVersion != model.version || held!.shardMapVersion == 0 {
                    // It lost the collection (or never got it): install, assign, refill.
                    let behind = entries[name]?.replicas.lists(behindOn: worker).count ?? 0
                    if behind < map.lists(ownedBy: worker).count {
                        try? markBehind(name, incarnation: entry.incarnation, map.lists(ownedBy: worker).map { ($0, worker) },
                                        reason: "the worker does not hold the collection's model")
                    }
                    await reconcile(worker)
                } else if held!.shardMapVersion < map.version {
                    // It missed a shard map change (a move while it was unreachable).
                    do {
                        try await pool.assignLists(ownedLists(worker, map: map, replicas: entry.replicas), collection: name,
                                                   modelVersion: model.version, shardMapVersion: map.version, on: worker)
                    } catch {
                        logger.warning("\(error)")
                    }
                } else if held!.damagedRecords > 0 {
                    await verifyDamaged(name, on: worker)
                }
            }
        }
    }

    /// Marks every list `worker` holds behind; false if that could not be recorded.
    private func markAllBehind(on worker: WorkerID, reason: String) -> Bool {
        var recorded = true
        for (name, entry) in entries {
            guard let map = entry.shardMap else { continue }
            let lists = map.lists(ownedBy: worker)
            guard !lists.isEmpty else { continue }
            do {
                try markBehind(name, incarnation: entry.incarnation, lists.map { ($0, worker) }, reason: reason)
            } catch {
                logger.error("cannot record the lists of \(name) on \(worker) as behind: \(error)")
                recorded = false
            }
        }
        return recorded
    }

    /// A worker skipped damaged records of `name` at start-up: every list that differs from a
    /// serving replica is behind. Once none is, the worker compacts (dropping the damage).
    private func verifyDamaged(_ name: String, on worker: WorkerID) async {
        guard let entry = entries[name], let map = entry.shardMap, let model = entry.model else { return }
        let pool = pool
        let mine: [Int32: ListDigest]
        do {
            mine = try await pool.listDigests(collection: name, modelVersion: model.version, on: worker)
        } catch {
            logger.warning("\(error)")
            return
        }
        var differing: [(list: Int32, worker: WorkerID)] = []
        var unverifiable = 0
        var digestsOf: [WorkerID: [Int32: ListDigest]] = [:]
        for list in map.lists(ownedBy: worker) where entry.replicas.isServing(list: list, worker: worker) {
            let others = map.replicas(ofList: Int(list)).filter { $0 != worker && entry.replicas.isServing(list: list, worker: $0) && !pool.down.contains($0) }
            guard let other = others.first else {
                unverifiable += 1
                continue
            }
            if digestsOf[other] == nil {
                digestsOf[other] = (try? await pool.listDigests(collection: name, modelVersion: model.version, on: other)) ?? [:]
            }
            if let theirs = digestsOf[other]![list], theirs != mine[list] { differing.append((list, worker)) }
        }
        if !differing.isEmpty {
            try? markBehind(name, incarnation: entry.incarnation, differing, reason: "damaged records were skipped on the worker")
        }
        if unverifiable > 0 {
            logger.error("worker \(worker) skipped damaged records of \(name); \(unverifiable) of its lists have no other serving replica to check against")
        }
        guard (entries[name]?.replicas.lists(behindOn: worker) ?? []).isEmpty else { return }
        do {
            try await pool.compact(collection: name, modelVersion: model.version, on: worker)
            logger.info("worker \(worker) compacted \(name); its damaged records are gone")
        } catch {
            logger.warning("\(error)")
        }
    }

    // MARK: - Repairs

    /// How long one repair round may hold a collection's writes back.
    static let repairRoundBudget: Duration = .milliseconds(300)

    /// Lists copied at once in a repair round.
    static let repairParallelism = 4

    /// Copies behind lists from serving replicas (or a worker still holding a list it is moving
    /// off), with the collection's writes held back meanwhile, and marks them serving once the
    /// copy's digest matches. True when some collection has repairs left that this round made
    /// progress on but ran out of time for (the caller comes back at once rather than after a
    /// heartbeat interval).
    @discardableResult
    func repairRound() async -> Bool {
        var more = false
        for name in entries.keys.sorted() {
            guard let entry = entries[name], let map = entry.shardMap, let model = entry.model,
                  !entry.replicas.behind.isEmpty else { continue }
            let healthy = Set(pool.snapshot().filter { $0.health == .healthy }.map(\.endpoint.id))
            var work: [(list: Int32, worker: WorkerID, source: WorkerID)] = []
            for (list, worker) in entry.replicas.behindReplicas where healthy.contains(worker) {
                guard map.replicas(ofList: Int(list)).contains(worker) else { continue }
                let serving = map.replicas(ofList: Int(list)).filter { $0 != worker && healthy.contains($0) && entry.replicas.isServing(list: list, worker: $0) }
                let moving = entry.replicas.releasing.filter { $0.value.contains(list) && healthy.contains($0.key) }.map(\.key).sorted()
                guard let source = serving.first ?? moving.first else { continue }
                work.append((list, worker, source))
            }
            guard !work.isEmpty else { continue }
            let incarnation = entry.incarnation
            let pool = pool
            let logger = logger
            let repaired = await gates[name].exclusive { () -> [(list: Int32, worker: WorkerID)] in
                let started = ContinuousClock.now
                var repaired: [(list: Int32, worker: WorkerID)] = []
                var next = 0
                while next < work.count && ContinuousClock.now - started < Self.repairRoundBudget {
                    let wave = work[next ..< min(work.count, next + Self.repairParallelism)]
                    next = wave.endIndex
                    let copied = await withTaskGroup(of: (list: Int32, worker: WorkerID)?.self) { group in
                        for item in wave {
                            group.addTask {
                                do {
                                    let copy = try await pool.copyList(item.list, collection: name, modelVersion: model.version,
                                                                       from: item.source, to: item.worker)
                                    if copy.sent == copy.stored { return (item.list, item.worker) }
                                    logger.error("repair of list \(item.list) of \(name) on \(item.worker) does not match its source \(item.source) (\(copy.stored) vs \(copy.sent)); retrying")
                                } catch {
                                    logger.warning("repair of list \(item.list) of \(name) on \(item.worker) from \(item.source) failed: \(error)")
                                }
                                return nil
                            }
                        }
                        var copied: [(list: Int32, worker: WorkerID)] = []
                        for await result in group { if let result { copied.append(result) } }
                        return copied
                    }
                    repaired += copied
                }
                return repaired
            }
            markServing(name, incarnation: incarnation, repaired)
            if !repaired.isEmpty {
                let left = entries[name]?.replicas.behind.values.reduce(0) { $0 + $1.count } ?? 0
                logger.info("repaired \(repaired.count) list replicas of \(name) (\(left) still behind)")
                if left > 0 { more = true }
            }
        }
        return more
    }

    // MARK: - Moving shards

    /// Replaces, in every collection, the replicas on workers that have been down for longer
    /// than the grace period: each shard they held gets the least-loaded other worker, which
    /// is refilled from the surviving replicas.
    func replaceDeadWorkers() async {
        let dead = pool.downLongerThan(deadAfter)
        guard !dead.isEmpty else { return }
        for worker in dead {
            await move(off: worker, reason: "worker \(worker) has been down for more than \(deadAfter)")
        }
    }

    /// Moves every shard `worker` holds, in every collection, to other workers (it keeps its data
    /// until the new replicas serve, then releases it). Returns the lists moving.
    @discardableResult
    func move(off worker: WorkerID, reason: String) async -> Int {
        var moving = 0
        let candidates = pool.placeable.filter { $0 != worker && !pool.isDraining($0) }
        for name in entries.keys.sorted() {
            guard let entry = entries[name], var map = entry.shardMap, let model = entry.model else { continue }
            let shards = map.shards(on: worker)
            guard !shards.isEmpty else { continue }
            var targets: [WorkerID: [Int32]] = [:]
            var version = map.version
            for shard in shards {
                guard let target = map.replacement(forShard: shard, candidates: candidates) else {
                    logger.error("\(name): no worker can take shard \(shard) off \(worker); it stays under-replicated")
                    continue
                }
                version += 1
                guard let next = try? map.moving(shard: shard, from: worker, to: target, version: version) else { continue }
                map = next
                targets[target, default: []] += map.lists(ofShard: shard)
            }
            guard map.version != entry.shardMap!.version else { continue }
            let moved = targets.values.flatMap { $0 }
            if await commitMove(name, incarnation: entry.incarnation, model: model, map: map, from: [worker: moved],
                                to: targets, reason: reason) {
                moving += moved.count
            }
        }
        return moving
    }

    /// Installs a new shard map in which `targets` take over `lists` from `worker`: the targets
    /// get the model and their lists (behind until repaired), `worker` keeps what it holds
    /// until those lists serve elsewhere.
    private func commitMove(_ name: String, incarnation: UInt64, model: IVFModel, map: ShardMap,
                            from sources: [WorkerID: [Int32]], to targets: [WorkerID: [Int32]], reason: String) async -> Bool {
        // Targets are behind (and sources keep serving) in the same step that the new map is
        // installed: no search may ever route to a target before its copy is complete.
        do {
            try saveReplicas(name) { replicas in
                replicas.markBehind(targets.flatMap { target, lists in lists.map { ($0, target) } })
                for (source, lists) in sources { replicas.addReleasing(lists, on: source) }
                replicas.prune(to: map)
            }
            try store.saveShardMap(map, collection: name)
            try update(name, incarnation: incarnation) { entry in
                entry.shardMap = map
                entry.record.shardMapVersion = map.version
            }
        } catch {
            logger.error("cannot record the move of \(name) off \(sources.keys.sorted().joined(separator: ", ")): \(error)")
            return false
        }
        let moved = sources.values.reduce(0) { $0 + $1.count }
        logger.warning("\(name): \(moved) lists move off \(sources.keys.sorted().joined(separator: ", ")) to \(targets.keys.sorted().joined(separator: ", ")) (\(reason))")
        for target in targets.keys.sorted() {
            do {
                try await pool.installModel(ModelCodec.encode(model), version: model.version, collection: name, on: target)
            } catch {
                logger.warning("\(error) (the repair retries)")
            }
        }
        // Every worker learns the new version (writes routed by it are refused by one that has
        // an older one); sources keep owning what they serve until it is released.
        let replicas = entries[name]?.replicas ?? ReplicaStates()
        for worker in pool.ids where !map.lists(ownedBy: worker).isEmpty || sources[worker] != nil {
            do {
                try await pool.assignLists(ownedLists(worker, map: map, replicas: replicas), collection: name,
                                           modelVersion: model.version, shardMapVersion: map.version, on: worker)
            } catch {
                logger.warning("\(error) (retried after the next heartbeat)")
            }
        }
        return true
    }

    /// What `worker` must own of a collection: its lists in the map, and those it still serves
    /// while they move off it.
    func ownedLists(_ worker: WorkerID, map: ShardMap, replicas: ReplicaStates) -> [Int32] {
        Set(map.lists(ownedBy: worker)).union(replicas.releasing[worker] ?? []).sorted()
    }

    /// Gives lists back: a worker that moved off lists releases them (deletes their data) once
    /// each has its write quorum of serving replicas elsewhere.
    func releaseRound() async {
        for name in entries.keys.sorted() {
            guard let entry = entries[name], let map = entry.shardMap, let model = entry.model else { continue }
            for (worker, lists) in entry.replicas.releasing where !pool.down.contains(worker) {
                let quorum = entry.record.settings.writeQuorum
                let safe = lists.allSatisfy { list in
                    map.replicas(ofList: Int(list)).filter { $0 != worker && entry.replicas.isServing(list: list, worker: $0) }.count >= quorum
                }
                guard safe else { continue }
                do {
                    try await pool.assignLists(map.lists(ownedBy: worker), collection: name, modelVersion: model.version,
                                               shardMapVersion: map.version, release: true, on: worker)
                    try saveReplicas(name) { $0.finishReleasing(worker) }
                    logger.info("worker \(worker) released \(lists.count) lists of \(name)")
                } catch {
                    logger.warning("releasing lists of \(name) on \(worker): \(error)")
                }
            }
        }
    }

    // MARK: - Draining and rebalancing

    /// Marks a worker draining and moves every list off it.
    func drain(_ worker: WorkerID) async throws(CoordinatorError) -> Int {
        guard pool.ids.contains(worker) else {
            throw .notFound("no worker \"\(worker)\" is registered (known: \(pool.ids.joined(separator: ", ")))")
        }
        pool.setDraining(true, worker)
        try store.saveWorkers(pool.endpoints)
        return await move(off: worker, reason: "draining")
    }

    /// Moves shards onto workers that hold less than their share (a newcomer), one collection
    /// at a time, while every worker is up and no replica is behind or being released (so a
    /// worker that is only briefly down never causes moves). True when it moved something.
    @discardableResult
    func rebalance() async -> Bool {
        let workers = pool.placeable.filter { !pool.isDraining($0) }
        guard workers.count > 1, pool.down.isEmpty,
              entries.values.allSatisfy({ $0.replicas.behind.isEmpty && $0.replicas.releasing.isEmpty && !$0.trainingClaimed }) else {
            return false
        }
        var movedAny = false
        for name in entries.keys.sorted() {
            guard let entry = entries[name], var map = entry.shardMap, let model = entry.model else { continue }
            let moves = map.rebalancingMoves(workers: workers)
            guard !moves.isEmpty else { continue }
            var version = map.version
            var targets: [WorkerID: [Int32]] = [:]
            var sources: [WorkerID: [Int32]] = [:]
            for move in moves {
                version += 1
                guard let next = try? map.moving(shard: move.shard, from: move.from, to: move.to, version: version) else { continue }
                map = next
                targets[move.to, default: []] += map.lists(ofShard: move.shard)
                sources[move.from, default: []] += map.lists(ofShard: move.shard)
            }
            guard map.version != entry.shardMap!.version else { continue }
            if await commitMove(name, incarnation: entry.incarnation, model: model, map: map, from: sources, to: targets,
                                reason: "rebalancing onto \(targets.keys.sorted().joined(separator: ", "))") {
                movedAny = true
            }
        }
        return movedAny
    }
}
