import Testing
@testable import QuiverCluster

@Suite struct LoadRoutingTests {
    /// Lists 0,1 on shard 0 and lists 2,3 on shard 1, each shard on its own worker (R = 1).
    func twoWorkerMap(replication: Int = 1, workers: [WorkerID] = ["A", "B"]) throws -> ShardMap {
        try ShardMap(version: 1, modelVersion: 1, replicationFactor: replication, shardOfList: [0, 0, 1, 1],
                     shardReplicas: replication == 1 ? [[workers[0]], [workers[1]]]
                         : [[workers[0], workers[1]], [workers[1], workers[2]]],
                     shardLoads: [0, 0])
    }

    @Test func spillAcrossWorkersSendsSingleListRowsToBoth() throws {
        let map = try twoWorkerMap()
        // Row 0: both lists on A. Row 1: primary on A, spill on B. Row 2: primary on B, no spill.
        let groups = try LoadRouter.route(primary: [0, 1, 3], spill: [1, 2, -1], shardMap: map)
        #expect(groups.map(\.worker) == ["A", "B"])
        let a = groups[0], b = groups[1]
        #expect(a.rows == [0, 1])
        #expect(a.lists == [0, 1])
        #expect(a.spillLists == [1, -1])
        #expect(a.hasSpill)
        #expect(b.rows == [1, 2])
        #expect(b.lists == [2, 3])
        #expect(b.spillLists == [-1, -1])
        #expect(!b.hasSpill)
    }

    @Test func everyReplicaGetsTheRow() throws {
        let map = try twoWorkerMap(replication: 2, workers: ["A", "B", "C"])
        // Row 0: list 0 lives on A,B. Row 1: list 2 on B,C, spill list 0 on A,B.
        let groups = try LoadRouter.route(primary: [0, 2], spill: [], shardMap: map)
        #expect(Dictionary(uniqueKeysWithValues: groups.map { ($0.worker, $0.rows) }) == ["A": [0], "B": [0, 1], "C": [1]])
        let spilled = try LoadRouter.route(primary: [2], spill: [0], shardMap: map)
        let byWorker = Dictionary(uniqueKeysWithValues: spilled.map { ($0.worker, $0) })
        #expect(byWorker["A"]!.lists == [0] && byWorker["A"]!.spillLists == [-1])
        #expect(byWorker["B"]!.lists == [2] && byWorker["B"]!.spillLists == [0])
        #expect(byWorker["C"]!.lists == [2] && byWorker["C"]!.spillLists == [-1])
        // Every stored copy: list 2 twice (B, C), list 0 twice (A, B).
        let copies = spilled.flatMap { $0.lists + $0.spillLists.filter { $0 >= 0 } }.sorted()
        #expect(copies == [0, 0, 2, 2])
    }

    @Test func spillEqualToPrimaryIsNoSpill() throws {
        let groups = try LoadRouter.route(primary: [1], spill: [1], shardMap: try twoWorkerMap())
        #expect(groups.count == 1 && groups[0].spillLists == [-1])
    }

    @Test func rejectsListsOutsideTheMap() throws {
        let map = try twoWorkerMap()
        #expect(throws: RoutingError.listOutOfRange(row: 1, list: 4, nlist: 4)) {
            try LoadRouter.route(primary: [0, 4], spill: [], shardMap: map)
        }
        #expect(throws: RoutingError.shapeMismatch(rows: 2, spillRows: 1)) {
            try LoadRouter.route(primary: [0, 1], spill: [0], shardMap: map)
        }
    }
}
