import Foundation
import GRPCCore
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import Synchronization
import Testing

@testable import QuiverWorker

/// The worker's RPCs, driven in-process through the service and the core without a network.
@Suite struct ShardWorkerTests {
    let allLists: [Int32] = (0 ..< Int32(Fixtures.nlist)).map { $0 }

    private func openWorker(_ dir: TemporaryDirectory, maxMessageBytes: Int = QuiverGRPC.maxMessageBytes) throws -> ShardWorker {
        try ShardWorker.open(dataDirectory: dir.path, options: .init(workerID: "w1", threads: 2, maxMessageBytes: maxMessageBytes))
    }

    /// Installs the model, owns `lists`, and ingests `rows` vectors (ids 0..<rows) through the service.
    private func loadedWorker(_ dir: TemporaryDirectory, lists: [Int32]? = nil, rows: Int = 400,
                              metric: Metric = .l2) async throws -> (ShardWorker, IVFModel, Matrix) {
        let worker = try openWorker(dir)
        let service = WorkerService(worker: worker)
        let model = try Fixtures.model(metric: metric)
        let installed = try await service.installModel(request: Requests.stream(Requests.chunks(model, collection: "docs")),
                                                       context: Requests.context(Quiver_V1_Worker.Method.InstallModel.descriptor))
        #expect(!installed.alreadyInstalled && installed.modelVersion == 1)
        _ = try worker.assignLists(Requests.assign("docs", shardMapVersion: 1, lists: lists ?? allLists))
        let data = Fixtures.vectors(rows: rows, seed: 42)
        let half = rows / 2
        let messages = [
            Requests.ingest("docs", model: model, vectors: Matrix(rows: half, dimension: data.dimension, values: Array(data.values[..<(half * data.dimension)])), firstID: 0),
            Requests.ingest("docs", model: model, vectors: Matrix(rows: rows - half, dimension: data.dimension, values: Array(data.values[(half * data.dimension)...])), firstID: Int64(half)),
        ]
        let response = try await service.ingest(request: Requests.stream(messages),
                                                context: Requests.context(Quiver_V1_Worker.Method.Ingest.descriptor))
        #expect(response.rowsStored + response.rowsRejected == UInt64(rows))
        return (worker, model, data)
    }

    @Test func installAssignIngestAndSearch() async throws {
        let dir = try TemporaryDirectory()
        let (worker, model, data) = try await loadedWorker(dir)
        #expect(worker.stats(.init()).vectors == 400)

        // Re-sending the same model changes nothing.
        let again = try await WorkerService(worker: worker).installModel(
            request: Requests.stream(Requests.chunks(model, collection: "docs", chunkBytes: 333)),
            context: Requests.context(Quiver_V1_Worker.Method.InstallModel.descriptor))
        #expect(again.alreadyInstalled && again.bytesReceived == UInt64(ModelCodec.encode(model).count))

        let queries = data.gathering(0 ..< 20)
        let response = try worker.searchLists(Requests.search("docs", queries: queries, lists: allLists, k: 5, reorderK: 40))
        // With re-ranking the answer is max(k, reorderK) candidates with their exact scores.
        #expect(response.results.queryCount == 20 && response.results.k == 40)
        let exact = response.exact
        #expect(exact.count == 20 * 40)
        for query in 0 ..< 20 {
            let slots = query * 40 ..< (query + 1) * 40
            let best = slots.min { exact[$0] < exact[$1] }!
            #expect(response.ids[best] == Int64(query), "a stored vector finds itself first")
            #expect(abs(exact[best]) < 1e-3, "L2 score of an exact match is 0")
            #expect(response.scores[query * 40] <= response.scores[query * 40 + 39], "L2 estimates ascend")
        }
        #expect(response.scanned == [UInt32](repeating: UInt32(Fixtures.nlist), count: 20))
        #expect(response.skippedOffsets.isEmpty && response.skippedListIds.isEmpty)
        #expect(response.codesScanned == UInt64(20 * worker.stats(.init()).vectors) + UInt64(20 * spilledCopies(worker)))

        let stats = worker.stats(.init())
        #expect(stats.workerID == "w1" && stats.listsOwned == UInt32(Fixtures.nlist) && stats.queriesServed == 20)
        #expect(stats.collections.first?.modelVersion == 1 && stats.collections.first?.shardMapVersion == 1)
        #expect(stats.bytes > 0 && stats.collections.first!.rawBytes == UInt64(400 * Fixtures.dimension * 4))
    }

    @Test func coarseScoresSentByTheCoordinatorAreTheOnesTheWorkerWouldCompute() async throws {
        let dir = try TemporaryDirectory()
        let (worker, model, data) = try await loadedWorker(dir, metric: .innerProduct)
        let count = 10, nprobe = 3
        let queries = data.gathering(0 ..< count)
        let probed = queries.values.withUnsafeBufferPointer { model.probeWithDistances($0.baseAddress!, count: count, nprobe: nprobe) }
        var request = Requests.search("docs", queries: queries, lists: [], k: 5, reorderK: 20)
        request.probeOffsets = WireArrays.pack((0 ... count).map { UInt32($0 * nprobe) })
        request.probeListIds = WireArrays.pack(probed.lists)
        let own = try worker.searchLists(request)
        #expect(own.ids.count == count * 20 && own.ids.allSatisfy { $0 >= 0 })
        // ⟨q, c⟩ as the coordinator's probe found it: the same answer, bit for bit.
        request.probeCoarseScores = WireArrays.pack(probed.distances.map { -$0 })
        let sent = try worker.searchLists(request)
        #expect(sent.ids == own.ids && sent.scores == own.scores && sent.exact == own.exact)
        // Scores that say something else move the estimates by as much: the worker took them
        // (a shift common to every list leaves the ranking and the exact scores alone).
        request.probeCoarseScores = WireArrays.pack(probed.distances.map { 100 - $0 })
        let shifted = try worker.searchLists(request)
        #expect(shifted.ids == own.ids && shifted.exact == own.exact)
        #expect(zip(shifted.scores, own.scores).allSatisfy { abs($0 - ($1 + 100)) < 1e-3 })
    }

    /// List entries beyond one per row: the spilled second copies.
    private func spilledCopies(_ worker: ShardWorker) -> Int {
        let collection = try! worker.collection("docs")
        return collection.read { index, _ in index.entryCount - index.count }
    }

    @Test func rowsAndProbesForListsNotOwnedAreRejectedAndSkipped() async throws {
        let dir = try TemporaryDirectory()
        let owned: [Int32] = [0, 1, 2, 3]
        let (worker, model, data) = try await loadedWorker(dir, lists: owned)
        let assignment = model.assign(data)
        let expectedStored = (0 ..< data.rows).filter {
            owned.contains(assignment.primary[$0]) && (assignment.spill[$0] < 0 || owned.contains(assignment.spill[$0]))
        }
        #expect(worker.stats(.init()).vectors == UInt64(expectedStored.count))

        let queries = data.gathering(0 ..< 4)
        let response = try worker.searchLists(Requests.search("docs", queries: queries, lists: allLists, k: 3))
        #expect(response.scanned == [4, 4, 4, 4])
        #expect(response.skipped == Array(repeatElement([Int32]([4, 5, 6, 7]), count: 4).joined()))
        #expect((try WireArrays.unpack(response.skippedOffsets, as: UInt32.self, field: "")) == [0, 4, 8, 12, 16])
        let stored = Set(expectedStored.map(Int64.init))
        #expect(response.ids.allSatisfy { $0 == -1 || stored.contains($0) })

        // A query with no lists here gets empty slots with the worst score.
        var empty = Requests.search("docs", queries: queries.gathering([0]), lists: [], k: 2)
        empty.probeOffsets = WireArrays.pack([UInt32(0), 0])
        let nothing = try worker.searchLists(empty)
        #expect(nothing.ids == [-1, -1] && nothing.scores == [.infinity, .infinity] && nothing.scanned == [0])
    }

    @Test func badInputIsRejectedWithTheRightStatusAndNothingStoredIsLost() async throws {
        let dir = try TemporaryDirectory()
        let (worker, model, data) = try await loadedWorker(dir, rows: 100)
        let queries = data.gathering(0 ..< 3)
        let baseline = try worker.searchLists(Requests.search("docs", queries: queries, lists: allLists, k: 4))
        let more = Fixtures.vectors(rows: 10, seed: 5)
        func ingest(_ edit: (inout Quiver_V1_IngestRequest) -> Void) throws {
            var request = Requests.ingest("docs", model: model, vectors: more, firstID: 1000)
            edit(&request)
            var session = IngestSession()
            try worker.ingest(request, session: &session)
        }

        // Ingest.
        expectStatus(.notFound) { try ingest { $0.collection = "nope" } }
        expectStatus(.invalidArgument) { try ingest { $0.collection = "" } }
        expectStatus(.failedPrecondition) { try ingest { $0.modelVersion = 2 } }
        expectStatus(.failedPrecondition) { try ingest { $0.shardMapVersion = 9 } }
        expectStatus(.invalidArgument) { try ingest { $0.batch.vectors.dimension = 15 } }
        expectStatus(.invalidArgument) { try ingest { $0.batch.vectors.data.removeLast() } }
        expectStatus(.invalidArgument) { try ingest { $0.batch.ids = Data() } }
        expectStatus(.invalidArgument) { try ingest { $0.batch.ids = WireArrays.pack([Int64](repeating: -5, count: 10)) } }
        expectStatus(.invalidArgument) { try ingest { $0.listIds = WireArrays.pack([Int32](repeating: 0, count: 9)) } }
        expectStatus(.invalidArgument) { try ingest { $0.listIds = WireArrays.pack([Int32](repeating: 8, count: 10)) } }
        expectStatus(.invalidArgument) { try ingest { $0.spillListIds = WireArrays.pack([Int32](repeating: -2, count: 10)) } }
        let nan = expectStatus(.invalidArgument) {
            try ingest { request in
                var values = more.values
                values[17] = .nan
                request.batch.vectors = Quiver_V1_FloatMatrix(rows: 10, dimension: Fixtures.dimension, values: values)
            }
        }
        #expect(nan.contains("vector 1") && nan.contains("component 1"))

        // A bad message after a good one: the good one stays stored and the error says so.
        var bad = Requests.ingest("docs", model: model, vectors: more, firstID: 2000)
        bad.batch.vectors.dimension = 3
        do {
            _ = try await WorkerService(worker: worker).ingest(
                request: Requests.stream([Requests.ingest("docs", model: model, vectors: more, firstID: 1000), bad]),
                context: Requests.context(Quiver_V1_Worker.Method.Ingest.descriptor))
            Issue.record("the second message should fail")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument && error.message.contains("10 rows of earlier messages"))
        }
        #expect(worker.stats(.init()).vectors == 110)

        // SearchLists.
        func search(_ edit: (inout Quiver_V1_SearchListsRequest) -> Void) throws {
            var request = Requests.search("docs", queries: queries, lists: allLists, k: 4)
            edit(&request)
            _ = try worker.searchLists(request)
        }
        expectStatus(.notFound) { try search { $0.collection = "nope" } }
        expectStatus(.failedPrecondition) { try search { $0.modelVersion = 7 } }
        expectStatus(.invalidArgument) { try search { $0.k = 0 } }
        expectStatus(.invalidArgument) { try search { $0.reorderK = 1_000_000 } }
        expectStatus(.invalidArgument) { try search { $0.queries.dimension = 8 } }
        expectStatus(.invalidArgument) { try search { $0.queries.data.append(0) } }
        expectStatus(.invalidArgument) { try search { $0.probeOffsets = WireArrays.pack([UInt32(0), 8, 16]) } }
        expectStatus(.invalidArgument) { try search { $0.probeOffsets = WireArrays.pack([UInt32(0), 16, 8, 24]) } }
        // Found by fuzz/FuzzRequests: a middle offset past the end of probe_list_ids (the last one
        // right) indexed out of bounds before the decrease after it was noticed.
        expectStatus(.invalidArgument) { try search { $0.probeOffsets = WireArrays.pack([UInt32(0), 0xFF_FC02, 24, 24]) } }
        expectStatus(.invalidArgument) { try search { $0.probeListIds = WireArrays.pack([Int32](repeating: 0, count: 24)) } }
        expectStatus(.invalidArgument) { try search { $0.probeListIds = WireArrays.pack([Int32](repeating: 99, count: 24)) } }
        expectStatus(.invalidArgument) { try search { $0.probeCoarseScores = WireArrays.pack([Float(1)]) } }
        let tight = try ShardWorker.open(dataDirectory: dir.path + "/other", options: .init(workerID: "w2", threads: 1, maxMessageBytes: 1 << 20))
        _ = try tight.installModel(collection: "docs", version: 1, bytes: ModelCodec.encode(model))
        expectStatus(.resourceExhausted) {
            _ = try tight.searchLists(Requests.search("docs", queries: Fixtures.vectors(rows: 200, seed: 1), lists: [0], k: 1000))
        }

        // InstallModel and AssignLists.
        let service = WorkerService(worker: worker)
        let context = Requests.context(Quiver_V1_Worker.Method.InstallModel.descriptor)
        var chunks = Requests.chunks(model, collection: "docs")
        chunks.remove(at: 1)
        await expectAsyncStatus(.invalidArgument) { _ = try await service.installModel(request: Requests.stream(chunks), context: context) }
        await expectAsyncStatus(.invalidArgument) {
            _ = try await service.installModel(request: Requests.stream(Array(Requests.chunks(model, collection: "docs").dropLast())), context: context)
        }
        await expectAsyncStatus(.invalidArgument) { _ = try await service.installModel(request: Requests.stream([]), context: context) }
        expectStatus(.invalidArgument) { _ = try worker.installModel(collection: "x", version: 1, bytes: [1, 2, 3]) }
        expectStatus(.invalidArgument) { _ = try worker.installModel(collection: "x", version: 2, bytes: ModelCodec.encode(model)) }
        expectStatus(.invalidArgument) { _ = try worker.installModel(collection: "a/b", version: 1, bytes: ModelCodec.encode(model)) }
        var huge = Requests.chunks(model, collection: "big")[0]
        huge.totalBytes = 1 << 40
        await expectAsyncStatus(.resourceExhausted) { _ = try await service.installModel(request: Requests.stream([huge]), context: context) }
        expectStatus(.failedPrecondition) {
            _ = try worker.installModel(collection: "docs", version: 2, bytes: ModelCodec.encode(try Fixtures.model(version: 2)))
        }
        expectStatus(.notFound) { _ = try worker.assignLists(Requests.assign("nope", shardMapVersion: 1, lists: [0])) }
        expectStatus(.failedPrecondition) { _ = try worker.assignLists(Requests.assign("docs", modelVersion: 3, shardMapVersion: 2, lists: [0])) }
        expectStatus(.invalidArgument) { _ = try worker.assignLists(Requests.assign("docs", shardMapVersion: 2, lists: [3, 1])) }
        expectStatus(.invalidArgument) { _ = try worker.assignLists(Requests.assign("docs", shardMapVersion: 2, lists: [0, 8])) }
        _ = try worker.assignLists(Requests.assign("docs", shardMapVersion: 5, lists: allLists))
        expectStatus(.failedPrecondition) { _ = try worker.assignLists(Requests.assign("docs", shardMapVersion: 4, lists: allLists)) }

        // Nothing stored was lost, in memory or on disk.
        #expect(worker.stats(.init()).vectors == 110)
        #expect(try worker.searchLists(Requests.search("docs", queries: queries, lists: allLists, k: 4)).ids == baseline.ids)
        let restarted = try openWorker(dir)
        #expect(restarted.stats(.init()).vectors == 110)
        #expect(try restarted.searchLists(Requests.search("docs", queries: queries, lists: allLists, k: 4)).ids == baseline.ids)
    }

    @Test func releasingListsDeletesTheirDataDurably() async throws {
        let dir = try TemporaryDirectory()
        let (worker, _, _) = try await loadedWorker(dir, rows: 100)
        let before = worker.stats(.init()).vectors
        let kept = try worker.listDigests(Requests.digests("docs")).lists
        _ = try worker.assignLists(Requests.assign("docs", shardMapVersion: 2, lists: [0], release: true))
        let after = worker.stats(.init())
        let digests = try worker.listDigests(Requests.digests("docs"))
        #expect(try WireArrays.unpack(digests.lists, as: Int32.self, field: "lists") == [0])
        #expect(after.vectors < before && after.collections[0].deadRows == 0)
        #expect(!kept.isEmpty)
        let restarted = try openWorker(dir)
        #expect(restarted.stats(.init()).vectors == after.vectors)
    }

    @Test func deletesCopiesAndLookupsByID() async throws {
        let dir = try TemporaryDirectory()
        let (worker, model, data) = try await loadedWorker(dir, rows: 100)
        var lookup = Quiver_V1_LookupIDsRequest()
        lookup.collection = "docs"
        lookup.modelVersion = 1
        lookup.ids = WireArrays.pack([Int64(3), 4, 999])
        let found = try worker.lookupIDs(lookup)
        #expect(try WireArrays.unpack(found.foundIds, as: Int64.self, field: "") == [3, 4])
        #expect(try WireArrays.unpack(found.vectors, as: Float.self, field: "").count == 2 * model.dimension)
        var delete = Quiver_V1_DeleteIDsRequest()
        delete.collection = "docs"
        delete.modelVersion = 1
        delete.ids = WireArrays.pack([Int64(3), 4, 999])
        #expect(try worker.deleteIDs(delete).removed == 2)
        #expect(try worker.deleteIDs(delete).removed == 0)
        #expect(worker.stats(.init()).vectors == 98)
        let hits = try worker.searchLists(Requests.search("docs", queries: data.gathering(3 ..< 5), lists: allLists, k: 5))
        #expect(!hits.ids.contains(3) && !hits.ids.contains(4))

        // Every list copied into a second worker makes the two answer alike, and survives its restart.
        let otherDir = try TemporaryDirectory()
        let other = try openWorker(otherDir)
        _ = try other.installModel(collection: "docs", version: 1, bytes: ModelCodec.encode(model))
        _ = try other.assignLists(Requests.assign("docs", shardMapVersion: 1, lists: allLists))
        for list in allLists {
            var export = Quiver_V1_ExportListRequest()
            export.collection = "docs"
            export.modelVersion = 1
            export.list = list
            let chunks = try worker.exportList(export)
            let imported = try other.importList(chunks)
            #expect(imported.entries == chunks[0].totalEntries)
        }
        #expect(try other.listDigests(Requests.digests("docs")) == worker.listDigests(Requests.digests("docs")))
        let query = Requests.search("docs", queries: data.gathering(0 ..< 10), lists: allLists, k: 5)
        #expect(try other.searchLists(query).ids == worker.searchLists(query).ids)
        #expect(try openWorker(otherDir).listDigests(Requests.digests("docs")) == worker.listDigests(Requests.digests("docs")))
        // A copy of a list the worker does not own is refused.
        _ = try other.assignLists(Requests.assign("docs", shardMapVersion: 2, lists: [0]))
        var export = Quiver_V1_ExportListRequest()
        export.collection = "docs"
        export.modelVersion = 1
        export.list = 1
        expectStatus(.failedPrecondition) { _ = try other.importList(try worker.exportList(export)) }
    }

    @Test func aRestartedWorkerServesTheSameData() async throws {
        let dir = try TemporaryDirectory()
        let (worker, _, data) = try await loadedWorker(dir, lists: [0, 2, 4, 6])
        let request = Requests.search("docs", queries: data.gathering(0 ..< 30), lists: allLists, k: 10, reorderK: 20)
        let before = try worker.searchLists(request)
        worker.checkpoint()
        let restarted = try openWorker(dir)
        let after = try restarted.searchLists(request)
        #expect(after.ids == before.ids && after.scores == before.scores && after.exact == before.exact && after.skipped == before.skipped)
        let (old, new) = (worker.stats(.init()).collections[0], restarted.stats(.init()).collections[0])
        #expect(new.vectors == old.vectors && new.listsOwned == 4 && new.shardMapVersion == 1 && new.codeBytes == old.codeBytes)
    }

    @Test func aCancelledSearchStopsScanning() async throws {
        let dir = try TemporaryDirectory()
        let (worker, _, data) = try await loadedWorker(dir, rows: 100)
        let request = Requests.search("docs", queries: data.gathering(Array(0 ..< 100) + Array(0 ..< 100)), lists: allLists, k: 3)
        let polls = Atomic<Int>(0)
        let message = expectStatus(.cancelled) {
            _ = try worker.searchLists(request) { polls.add(1, ordering: .relaxed).newValue > 1 }
        }
        #expect(message.contains("after 64 of 200 queries"))

        // Through the service, a cancelled RPC handle stops it too.
        let context = Requests.context(Quiver_V1_Worker.Method.SearchLists.descriptor)
        context.cancellation.cancel()
        await expectAsyncStatus(.cancelled) { _ = try await WorkerService(worker: worker).searchLists(request: request, context: context) }
    }

    @Test func modelReplacementAndDrop() async throws {
        let dir = try TemporaryDirectory()
        let worker = try openWorker(dir)
        _ = try worker.installModel(collection: "c", version: 1, bytes: ModelCodec.encode(try Fixtures.model(version: 1)))
        _ = try worker.assignLists(Requests.assign("c", shardMapVersion: 3, lists: [1]))
        let replaced = try worker.installModel(collection: "c", version: 2, bytes: ModelCodec.encode(try Fixtures.model(version: 2)))
        #expect(!replaced.alreadyInstalled)
        let stats = worker.stats(.with { $0.collection = "c" }).collections
        #expect(stats.count == 1 && stats[0].modelVersion == 2 && stats[0].listsOwned == 0 && stats[0].shardMapVersion == 3)
        #expect(try openWorker(dir).stats(.init()).collections.first?.modelVersion == 2)

        let dropped = try worker.dropCollection(.with { $0.collection = "c" })
        #expect(dropped.existed && dropped.bytesFreed > 0)
        #expect(try worker.dropCollection(.with { $0.collection = "c" }).existed == false)
        expectStatus(.notFound) { _ = try worker.assignLists(Requests.assign("c", modelVersion: 2, shardMapVersion: 4, lists: [1])) }
        #expect(try openWorker(dir).stats(.init()).collections.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/collections").isEmpty)
    }

    @Test func searchesRunWhileIngestAppends() async throws {
        let dir = try TemporaryDirectory()
        let (worker, model, data) = try await loadedWorker(dir, rows: 100)
        let queries = data.gathering(0 ..< 8)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for part in 0 ..< 10 {
                    var session = IngestSession()
                    try worker.ingest(Requests.ingest("docs", model: model, vectors: Fixtures.vectors(rows: 20, seed: UInt64(part)),
                                                      firstID: Int64(10_000 + part * 20)), session: &session)
                }
            }
            for _ in 0 ..< 3 {
                group.addTask {
                    for _ in 0 ..< 10 {
                        let response = try worker.searchLists(Requests.search("docs", queries: queries, lists: allLists, k: 1))
                        #expect(response.ids == (0 ..< 8).map(Int64.init))
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(worker.stats(.init()).vectors == 300)
    }
}

func expectAsyncStatus(_ code: RPCError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                       _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected \(code), the call succeeded", sourceLocation: sourceLocation)
    } catch let error as RPCError {
        #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected RPCError \(code), got \(error)", sourceLocation: sourceLocation)
    }
}
