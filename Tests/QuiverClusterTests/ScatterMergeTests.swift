import QuiverIndex
import Testing
@testable import QuiverCluster

@Suite struct ScatterPlanTests {
    /// Lists 0..5: shard 0 = {0,1,2}, shard 1 = {3,4,5}; shard 0 on A,B and shard 1 on B,C.
    func replicatedMap() throws -> ShardMap {
        try ShardMap(version: 3, modelVersion: 1, replicationFactor: 2, shardOfList: [0, 0, 0, 1, 1, 1],
                     shardReplicas: [["A", "B"], ["C", "B"]], shardLoads: [0, 0])
    }

    @Test func requestsCarryOnlyOwnedListsAndInvolvedQueries() throws {
        let map = try replicatedMap()
        // Query 0 probes 0,1; query 1 probes 3,0; query 2 probes 4,5.
        let plan = try ScatterPlan(probes: [0, 1, 3, 0, 4, 5], queryCount: 3, nprobe: 2, shardMap: map)
        #expect(plan.workers == ["A", "C"])
        #expect(plan.unroutable.isEmpty)
        let a = plan.requests[0], c = plan.requests[1]
        #expect(a.queries == [0, 1])
        #expect(a.probeOffsets == [0, 2, 3])
        #expect(a.probeListIDs == [0, 1, 0])
        #expect(c.queries == [1, 2])
        #expect(c.probeOffsets == [0, 1, 3])
        #expect(c.probeListIDs == [3, 4, 5])
        for request in plan.requests {
            let owned = Set(map.lists(ownedBy: request.worker))
            #expect(request.probeListIDs.allSatisfy(owned.contains))
        }
    }

    @Test func eachRequestCarriesTheCoarseScoresOfExactlyItsLists() throws {
        let map = try replicatedMap()
        // Three queries probing three lists each, nearest first (not in list order), one padded.
        let probes: [Int32] = [4, 0, 2, 1, 5, 3, 3, -1, -1]
        let scores = probes.enumerated().map { Float($0.offset) + Float($0.element) / 10 }
        let lookup = try ProbeScores(probes: probes, scores: scores, nprobe: 3)
        let plan = try ScatterPlan(probes: probes, queryCount: 3, nprobe: 3, shardMap: map)
        func expected(_ request: ShardRequest) -> [Float] {
            request.probedLists.map { pair in
                scores[(pair.query * 3 ..< pair.query * 3 + 3).first { probes[$0] == pair.list }!]
            }
        }
        #expect(plan.requests.count == 2)
        for request in plan.requests {
            #expect(try lookup.scores(for: request) == expected(request))
        }
        // A retry plan carries a subset of the pairs, again found by pair.
        let retry = try ScatterPlan(lists: plan.requests[0].probedLists, shardMap: map, unavailable: ["A"])
        #expect(try lookup.scores(for: retry.requests[0]) == expected(retry.requests[0]))
        // A pair that was never probed is an error, not a wrong score.
        let stray = ShardRequest(worker: "A", queries: [2], probeOffsets: [0, 1], probeListIDs: [0])
        #expect(throws: ScatterError.self) { try lookup.scores(for: stray) }
        let outside = ShardRequest(worker: "A", queries: [3], probeOffsets: [0, 1], probeListIDs: [0])
        #expect(throws: ScatterError.self) { try lookup.scores(for: outside) }
        #expect(throws: ScatterError.self) { try ProbeScores(probes: probes, scores: [1], nprobe: 3) }
    }

    @Test func downWorkerIsSkippedForAReplica() throws {
        let map = try replicatedMap()
        let plan = try ScatterPlan(probes: [0, 3], queryCount: 1, nprobe: 2, shardMap: map, unavailable: ["A"])
        #expect(plan.workers == ["B", "C"])
        #expect(plan.requests[0].probeListIDs == [0])
    }

    @Test func failoverMovesAFailedRequestToAnotherReplica() throws {
        let map = try replicatedMap()
        let first = try ScatterPlan(probes: [1, 4, 2, 5], queryCount: 2, nprobe: 2, shardMap: map)
        let failed = first.requests.first { $0.worker == "A" }!
        let retry = try ScatterPlan(lists: failed.probedLists, shardMap: map, unavailable: ["A"])
        #expect(retry.workers == ["B"])
        #expect(retry.requests[0].probedLists == failed.probedLists)
        // With both replicas gone, the lists cannot be answered at all.
        let none = try ScatterPlan(lists: failed.probedLists, shardMap: map, unavailable: ["A", "B"])
        #expect(none.requests.isEmpty)
        #expect(none.unroutable == failed.probedLists)
    }

    @Test func rotationSpreadsShardsOverReplicas() throws {
        let map = try replicatedMap()
        let even = try ScatterPlan(probes: [0], queryCount: 1, nprobe: 1, shardMap: map, rotation: 0)
        let odd = try ScatterPlan(probes: [0], queryCount: 1, nprobe: 1, shardMap: map, rotation: 1)
        #expect(even.workers == ["A"] && odd.workers == ["B"])
    }

    @Test func skippedCSRIsDecodedAndChecked() throws {
        let request = ShardRequest(worker: "A", queries: [2, 5], probeOffsets: [0, 2, 3], probeListIDs: [0, 1, 2])
        #expect(try request.probedLists(offsets: [0, 1, 1], lists: [1]) == [ProbedList(query: 2, list: 1)])
        #expect(try request.probedLists(offsets: [], lists: []) == [])
        #expect(throws: ScatterError.self) { try request.probedLists(offsets: [0, 1, 1], lists: [2]) }
        #expect(throws: ScatterError.self) { try request.probedLists(offsets: [0, 1], lists: [1]) }
    }

    @Test func rejectsBadShapes() throws {
        #expect(throws: ScatterError.self) {
            try ScatterPlan(probes: [0, 1, 2], queryCount: 2, nprobe: 2, shardMap: try replicatedMap())
        }
        #expect(throws: ScatterError.listOutOfRange(list: 9, nlist: 6)) {
            try ScatterPlan(probes: [9], queryCount: 1, nprobe: 1, shardMap: try replicatedMap())
        }
    }
}

@Suite struct ResultMergerTests {
    @Test func mergesInnerProductAnswersBestFirstAndDedupesSpilledIds() throws {
        let a = ShardRequest(worker: "A", queries: [0, 1], probeOffsets: [0, 1, 2], probeListIDs: [0, 1])
        let b = ShardRequest(worker: "B", queries: [0], probeOffsets: [0, 1], probeListIDs: [2])
        var merger = ResultMerger(queryCount: 2, k: 3, metric: .innerProduct, listsProbed: [2, 1])
        try merger.add(a, answerK: 2, ids: [10, 11, 20, -1], scores: [0.9, 0.5, 0.7, -.infinity])
        // Id 11 was spilled into B's list too, with a better score there.
        try merger.add(b, answerK: 2, ids: [12, 11], scores: [0.8, 0.6])
        let results = merger.finish()
        #expect(Array(results.ids(ofQuery: 0)) == [10, 12, 11])
        #expect(merger.userScores(of: results)[0 ..< 3] == [0.9, 0.8, 0.6])
        #expect(Array(results.ids(ofQuery: 1)) == [20, -1, -1])
        #expect(merger.userScores(of: results)[4] == -.infinity)
        #expect(merger.coverage.isComplete)
        #expect(merger.coverage.workersAnswered == 2)
    }

    @Test func l2KeepsLowestDistances() throws {
        let request = ShardRequest(worker: "A", queries: [0], probeOffsets: [0, 1], probeListIDs: [0])
        let other = ShardRequest(worker: "B", queries: [0], probeOffsets: [0, 1], probeListIDs: [1])
        var merger = ResultMerger(queryCount: 1, k: 2, metric: .l2, listsProbed: [2])
        try merger.add(request, answerK: 2, ids: [1, 2], scores: [0.5, 3])
        try merger.add(other, answerK: 2, ids: [3, -1], scores: [1, .infinity])
        let results = merger.finish()
        #expect(results.ids == [1, 3])
        #expect(merger.userScores(of: results) == [0.5, 1])
    }

    @Test func coverageCountsFailuresAndSkippedLists() throws {
        let a = ShardRequest(worker: "A", queries: [0, 1], probeOffsets: [0, 2, 4], probeListIDs: [0, 1, 0, 1])
        let b = ShardRequest(worker: "B", queries: [0], probeOffsets: [0, 2], probeListIDs: [2, 3])
        var merger = ResultMerger(queryCount: 2, k: 1, metric: .cosine, listsProbed: [4, 2])
        try merger.add(a, answerK: 1, ids: [1, 2], scores: [0.3, 0.2], skipped: [ProbedList(query: 1, list: 0)])
        merger.recordFailure(of: b)
        #expect(merger.coverage.listsAnswered == [2, 1])
        #expect(merger.coverage.fraction(ofQuery: 0) == 0.5)
        #expect(merger.coverage.fraction(ofQuery: 1) == 0.5)
        #expect(merger.coverage.totalProbed == 6 && merger.coverage.totalAnswered == 3)
        #expect(merger.coverage.workersQueried == 2 && merger.coverage.workersAnswered == 1)
        #expect(!merger.coverage.isComplete)
        // A retried pair answered by a replica raises coverage exactly once.
        let retry = ShardRequest(worker: "C", queries: [0], probeOffsets: [0, 2], probeListIDs: [2, 3])
        try merger.add(retry, answerK: 1, ids: [7], scores: [0.9])
        try merger.add(retry, answerK: 1, ids: [7], scores: [0.9])
        #expect(merger.coverage.listsAnswered == [4, 1])
        #expect(merger.finish().ids == [7, 2])
    }

    @Test func rejectsMalformedAnswers() {
        let request = ShardRequest(worker: "A", queries: [0], probeOffsets: [0, 1], probeListIDs: [0])
        var merger = ResultMerger(queryCount: 1, k: 2, metric: .l2, listsProbed: [1])
        #expect(throws: ScatterError.self) { try merger.add(request, answerK: 2, ids: [1], scores: [1]) }
    }
}

@Suite struct SearchSettingsTests {
    @Test func defaults() throws {
        let settings = try SearchSettings(k: 10, nprobe: 0, reorderK: nil, queryCount: 5, nlist: 632, storesRawVectors: true, maxMessageBytes: limit)
        #expect(settings.nprobe == 16)
        #expect(settings.reorderK == 40)
        let small = try SearchSettings(k: 100, nprobe: 0, reorderK: nil, queryCount: 1, nlist: 4, storesRawVectors: false, maxMessageBytes: limit)
        #expect(small.nprobe == 4 && small.reorderK == 0)
        #expect(try SearchSettings(k: 100, nprobe: 3, reorderK: nil, queryCount: 1, nlist: 64, storesRawVectors: true, maxMessageBytes: limit).reorderK == 100)
        // An explicit 0 turns re-ranking off.
        #expect(try SearchSettings(k: 10, nprobe: 3, reorderK: 0, queryCount: 1, nlist: 64, storesRawVectors: true, maxMessageBytes: limit).reorderK == 0)
    }

    @Test func rejections() {
        #expect(throws: SearchSettingsError.invalidK(0)) {
            try SearchSettings(k: 0, nprobe: 0, reorderK: nil, queryCount: 1, nlist: 8, storesRawVectors: true, maxMessageBytes: limit)
        }
        #expect(throws: SearchSettingsError.invalidK(10_001)) {
            try SearchSettings(k: 10_001, nprobe: 0, reorderK: nil, queryCount: 1, nlist: 8, storesRawVectors: true, maxMessageBytes: limit)
        }
        #expect(throws: SearchSettingsError.nprobeTooLarge(nprobe: 9, nlist: 8)) {
            try SearchSettings(k: 1, nprobe: 9, reorderK: nil, queryCount: 1, nlist: 8, storesRawVectors: true, maxMessageBytes: limit)
        }
        #expect(throws: SearchSettingsError.reorderWithoutRawVectors) {
            try SearchSettings(k: 1, nprobe: 1, reorderK: 10, queryCount: 1, nlist: 8, storesRawVectors: false, maxMessageBytes: limit)
        }
        #expect(throws: SearchSettingsError.reorderBelowK(reorderK: 5, k: 10)) {
            try SearchSettings(k: 10, nprobe: 1, reorderK: 5, queryCount: 1, nlist: 8, storesRawVectors: true, maxMessageBytes: limit)
        }
        #expect((try? SearchSettings(k: 10_000, nprobe: 1, reorderK: nil, queryCount: 10_000, nlist: 8,
                                     storesRawVectors: false, maxMessageBytes: limit)) == nil)
    }

    @Test func reorderIsBounded() {
        #expect(throws: SearchSettingsError.reorderTooLarge(1_000_000)) {
            try SearchSettings(k: 10, nprobe: 1, reorderK: 1_000_000, queryCount: 1, nlist: 8, storesRawVectors: true, maxMessageBytes: limit)
        }
    }

    @Test func theWorkersAnswerMustFitOneMessage() throws {
        // 1,000 queries × 10,000 candidates × 16 bytes is 160 MB: refused before any worker is asked.
        #expect(throws: SearchSettingsError.self) {
            try SearchSettings(k: 10, nprobe: 1, reorderK: 10_000, queryCount: 1_000, nlist: 8, storesRawVectors: true, maxMessageBytes: limit)
        }
        let most = SearchSettings.maxAnswerSlots(maxMessageBytes: limit) / 10_000
        #expect(try SearchSettings(k: 10, nprobe: 1, reorderK: 10_000, queryCount: most, nlist: 8, storesRawVectors: true,
                                   maxMessageBytes: limit).reorderK == 10_000)
        #expect(most * 10_000 * SearchSettings.bytesPerAnswerSlot < limit)
    }
}

private let limit = 64 << 20
