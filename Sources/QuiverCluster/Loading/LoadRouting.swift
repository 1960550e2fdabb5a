/// The rows of one load batch that one worker must store, with the list (and, when both of a
/// row's lists live on this worker, the spill list) of each row.
public struct IngestGroup: Sendable, Equatable {
    public let worker: WorkerID
    /// Row indices into the batch, ascending.
    public var rows: [Int] = []
    /// The list each row goes to on this worker.
    public var lists: [Int32] = []
    /// The row's second list on this worker, −1 for none.
    public var spillLists: [Int32] = []

    public init(worker: WorkerID) { self.worker = worker }

    public var count: Int { rows.count }

    /// Whether any row spills within this worker; when not, the wire field stays empty.
    public var hasSpill: Bool { spillLists.contains { $0 >= 0 } }
}

/// Splits an assigned batch by owner. Every replica of a row's list gets the row, so the load is
/// durable on all copies once every group is acknowledged.
public enum LoadRouter {
    /// `primary[i]` and `spill[i]` are row `i`'s lists from `IVFModel.assign` (`spill` may be
    /// empty, or −1 where a row does not spill). A row whose two lists live on different workers
    /// reaches each as a single-list row; where one worker holds both, it arrives once with both.
    /// Groups come back sorted by worker.
    public static func route(primary: [Int32], spill: [Int32], shardMap: ShardMap) throws(RoutingError) -> [IngestGroup] {
        guard spill.isEmpty || spill.count == primary.count else {
            throw .shapeMismatch(rows: primary.count, spillRows: spill.count)
        }
        var groups: [WorkerID: IngestGroup] = [:]
        for row in primary.indices {
            let first = primary[row]
            guard first >= 0, Int(first) < shardMap.nlist else { throw .listOutOfRange(row: row, list: first, nlist: shardMap.nlist) }
            var second: Int32 = spill.isEmpty ? -1 : spill[row]
            if second == first { second = -1 }
            guard second < 0 || Int(second) < shardMap.nlist else {
                throw .listOutOfRange(row: row, list: second, nlist: shardMap.nlist)
            }
            let firstOwners = shardMap.replicas(ofList: Int(first))
            for worker in firstOwners {
                let alsoSpill = second >= 0 && shardMap.replicas(ofList: Int(second)).contains(worker)
                append(row: row, list: first, spill: alsoSpill ? second : -1, to: worker, in: &groups)
            }
            guard second >= 0 else { continue }
            for worker in shardMap.replicas(ofList: Int(second)) where !firstOwners.contains(worker) {
                append(row: row, list: second, spill: -1, to: worker, in: &groups)
            }
        }
        return groups.values.sorted { $0.worker < $1.worker }
    }

    private static func append(row: Int, list: Int32, spill: Int32, to worker: WorkerID,
                               in groups: inout [WorkerID: IngestGroup]) {
        groups[worker, default: IngestGroup(worker: worker)].rows.append(row)
        groups[worker]!.lists.append(list)
        groups[worker]!.spillLists.append(spill)
    }
}

/// A batch that cannot be routed: assignment output inconsistent with the shard map.
public enum RoutingError: Error, Equatable, CustomStringConvertible, Sendable {
    case shapeMismatch(rows: Int, spillRows: Int)
    case listOutOfRange(row: Int, list: Int32, nlist: Int)

    public var description: String {
        switch self {
        case .shapeMismatch(let rows, let spillRows):
            "assignment has \(rows) primary lists but \(spillRows) spill lists"
        case .listOutOfRange(let row, let list, let nlist):
            "row \(row) is assigned to list \(list), outside the shard map's \(nlist) lists (model and shard map disagree)"
        }
    }
}
