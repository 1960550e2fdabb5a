import Testing
@testable import QuiverCluster

@Suite struct ShardMapTests {
    let workers = ["w-c:3", "w-a:1", "w-b:2"]

    @Test func everyListPlacedAndSizesBalanced() throws {
        // Power-law-ish sizes: a few hot lists, many small ones.
        let sizes = (0 ..< 200).map { 10_000 / ($0 + 1) + ($0 * 7919) % 13 }
        let map = try ShardMap.place(version: 1, modelVersion: 1, listSizes: sizes, workers: workers, replicationFactor: 1)
        #expect(map.nlist == 200)
        #expect(map.shardCount == 3)
        for shard in 0 ..< 3 {
            let expected = sizes.indices.filter { map.shardOfList[$0] == shard }.map { sizes[$0] }.reduce(0, +)
            #expect(map.shardLoads[shard] == expected)
        }
        // Greedy largest-first keeps shards within one (largest) list of each other.
        let spread = map.shardLoads.max()! - map.shardLoads.min()!
        #expect(spread <= sizes.max()!)
        #expect(Double(map.shardLoads.max()!) <= 1.05 * Double(sizes.reduce(0, +)) / 3 + Double(sizes.max()!))
        let owned = map.workers.flatMap { map.lists(ownedBy: $0) }
        #expect(owned.sorted() == (0 ..< 200).map(Int32.init))
    }

    @Test func equalSizesSpreadListCounts() throws {
        let map = try ShardMap.place(version: 1, modelVersion: 1, listSizes: [Int](repeating: 0, count: 10),
                                     workers: workers, replicationFactor: 1)
        let counts = map.workers.map { map.lists(ownedBy: $0).count }.sorted()
        #expect(counts == [3, 3, 4])
    }

    @Test func deterministicWhateverTheWorkerOrder() throws {
        let sizes = (0 ..< 64).map { ($0 * 37) % 101 }
        let a = try ShardMap.place(version: 4, modelVersion: 2, listSizes: sizes, workers: workers, replicationFactor: 2)
        let b = try ShardMap.place(version: 4, modelVersion: 2, listSizes: sizes, workers: workers.reversed() + ["w-a:1"],
                                   replicationFactor: 2)
        #expect(a == b)
        #expect(a.workers == ["w-a:1", "w-b:2", "w-c:3"])
    }

    @Test func replicasAreDistinctAndEveryWorkerHoldsRShards() throws {
        let five = (0 ..< 5).map { "worker-\($0)" }
        let map = try ShardMap.place(version: 1, modelVersion: 1, listSizes: (0 ..< 50).map { $0 }, workers: five,
                                     replicationFactor: 3)
        for list in 0 ..< 50 {
            let replicas = map.replicas(ofList: list)
            #expect(replicas.count == 3)
            #expect(Set(replicas).count == 3)
            for worker in replicas { #expect(map.lists(ownedBy: worker).contains(Int32(list))) }
        }
        for worker in five {
            #expect(map.shardReplicas.filter { $0.contains(worker) }.count == 3)
            #expect(map.lists(ownedBy: worker) == map.lists(ownedBy: worker).sorted())
        }
    }

    @Test func rejectsImpossiblePlacements() {
        #expect(throws: PlacementError.noWorkers) {
            try ShardMap.place(version: 1, modelVersion: 1, listSizes: [1], workers: [], replicationFactor: 1)
        }
        #expect(throws: PlacementError.invalidReplicationFactor(4, workers: 3)) {
            try ShardMap.place(version: 1, modelVersion: 1, listSizes: [1, 2], workers: workers, replicationFactor: 4)
        }
        #expect(throws: PlacementError.invalidReplicationFactor(0, workers: 3)) {
            try ShardMap.place(version: 1, modelVersion: 1, listSizes: [1, 2], workers: workers, replicationFactor: 0)
        }
    }

    @Test func codableRoundTrip() throws {
        let map = try ShardMap.place(version: 7, modelVersion: 3, listSizes: [5, 1, 9, 0], workers: workers, replicationFactor: 2)
        let data = try JSONEncoder().encode(map)
        #expect(try JSONDecoder().decode(ShardMap.self, from: data) == map)
    }
}

import Foundation
