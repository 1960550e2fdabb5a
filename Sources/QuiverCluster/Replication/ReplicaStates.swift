/// Which replicas of a collection's lists are not serving: behind (they missed writes, lost
/// their data, or were newly given the list) until a repair copies the list from a serving
/// replica. Searches skip them and writes do not count them towards the quorum. A plain value:
/// the coordinator persists it before it acknowledges a write that made a replica behind.
public struct ReplicaStates: Sendable, Equatable, Codable {
    /// Behind replicas by list.
    public private(set) var behind: [Int32: Set<WorkerID>] = [:]
    /// Lists a worker still holds but no longer owns (it was moved off them); they are released
    /// once every such list is serving elsewhere, and can meanwhile be a repair's source.
    public private(set) var releasing: [WorkerID: Set<Int32>] = [:]

    public init() {}

    public func isServing(list: Int32, worker: WorkerID) -> Bool {
        behind[list]?.contains(worker) != true
    }

    public var isEmpty: Bool { behind.isEmpty && releasing.isEmpty }

    /// Every behind (list, worker) pair, sorted.
    public var behindReplicas: [(list: Int32, worker: WorkerID)] {
        behind.keys.sorted().flatMap { list in behind[list]!.sorted().map { (list, $0) } }
    }

    public func lists(behindOn worker: WorkerID) -> [Int32] {
        behind.keys.filter { behind[$0]!.contains(worker) }.sorted()
    }

    /// Marks replicas behind; returns whether anything changed.
    @discardableResult
    public mutating func markBehind(_ pairs: some Sequence<(list: Int32, worker: WorkerID)>) -> Bool {
        var changed = false
        for (list, worker) in pairs where behind[list, default: []].insert(worker).inserted {
            changed = true
        }
        return changed
    }

    /// Marks every listed replica of `worker` behind (it lost or damaged its data).
    @discardableResult
    public mutating func markBehind(worker: WorkerID, lists: [Int32]) -> Bool {
        markBehind(lists.map { ($0, worker) })
    }

    public mutating func markServing(list: Int32, worker: WorkerID) {
        behind[list]?.remove(worker)
        if behind[list]?.isEmpty == true { behind[list] = nil }
    }

    /// Forgets a worker's marks for lists it no longer owns under `shardMap`.
    public mutating func prune(to shardMap: ShardMap) {
        for list in Array(behind.keys) {
            let owners = Set(shardMap.replicas(ofList: Int(list)))
            behind[list] = behind[list]!.filter { owners.contains($0) }
            if behind[list]!.isEmpty { behind[list] = nil }
        }
    }

    public mutating func addReleasing(_ lists: [Int32], on worker: WorkerID) {
        guard !lists.isEmpty else { return }
        releasing[worker, default: []].formUnion(lists)
    }

    public mutating func finishReleasing(_ worker: WorkerID) {
        releasing[worker] = nil
    }
}

/// Whether a write to some lists reached enough serving replicas, and which replicas it left
/// behind.
public struct WriteOutcome: Sendable, Equatable {
    /// Lists that reached fewer serving replicas than the quorum, with how many they reached.
    public var shortLists: [(list: Int32, stored: Int)] = []
    /// Replicas that did not store the write while another replica of the same list did: they
    /// are behind from now on.
    public var newlyBehind: [(list: Int32, worker: WorkerID)] = []

    public var isAcknowledged: Bool { shortLists.isEmpty }

    public static func == (a: WriteOutcome, b: WriteOutcome) -> Bool {
        a.shortLists.map(\.list) == b.shortLists.map(\.list) && a.shortLists.map(\.stored) == b.shortLists.map(\.stored)
            && a.newlyBehind.map(\.list) == b.newlyBehind.map(\.list) && a.newlyBehind.map(\.worker) == b.newlyBehind.map(\.worker)
    }

    /// Judges a write that touched `lists`, sent to every replica of each, of which the workers
    /// in `stored` answered success.
    public init(lists: some Sequence<Int32>, stored: Set<WorkerID>, shardMap: ShardMap, replicas: ReplicaStates,
                writeQuorum: Int) {
        for list in Set(lists).sorted() {
            let owners = shardMap.replicas(ofList: Int(list))
            let servingStored = owners.filter { stored.contains($0) && replicas.isServing(list: list, worker: $0) }.count
            if servingStored < writeQuorum { shortLists.append((list, servingStored)) }
            if owners.contains(where: { stored.contains($0) }) {
                for worker in owners where !stored.contains(worker) && replicas.isServing(list: list, worker: worker) {
                    newlyBehind.append((list, worker))
                }
            }
        }
    }
}

extension ShardMap {
    /// The write quorum a collection's `write_quorum` setting means (0: a majority).
    public static func writeQuorum(_ setting: Int, replicationFactor: Int) -> Int {
        setting > 0 ? min(setting, replicationFactor) : replicationFactor / 2 + 1
    }
}
