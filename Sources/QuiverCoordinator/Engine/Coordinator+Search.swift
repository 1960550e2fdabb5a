import CoreMetrics
import Foundation
import GRPCCore
import QuiverCluster
import QuiverIndex
import QuiverProtocol

extension Coordinator {
    /// Time kept back from the caller's deadline for merging and replying.
    static let replyMargin: Duration = .milliseconds(20)
    /// Result slots (queries × candidates each) a batch may merge on the thread it runs on; a
    /// bigger batch merges on a GCD thread (see `scatterSearch`).
    static let inlineMergeSlots = 1 << 16

    /// A search checked against its collection: its settings, and its queries prepared for the
    /// model. Searches whose `coalescingKey`s are equal can be answered by one scatter.
    struct PreparedSearch: Sendable {
        let serving: Serving
        let settings: SearchSettings
        let queries: Matrix
        let requireFullCoverage: Bool

        /// Same collection state, settings and time limit: one probe, one worker request, one merge.
        func coalescingKey(limitMs: UInt32) -> SearchCoalescingKey {
            SearchCoalescingKey(collection: serving.name, incarnation: serving.incarnation, modelVersion: serving.model.version,
                                shardMapVersion: serving.shardMap.version, k: settings.k, nprobe: settings.nprobe,
                                reorderK: settings.reorderK, limitMs: limitMs)
        }
    }

    /// The merged answer of one scatter, over the rows of one search or of several coalesced ones.
    struct ScatterOutcome: Sendable {
        /// Distances; `metric.score(fromDistance:)` gives user scores.
        let results: SearchResults
        let coverage: SearchCoverage
        /// Why workers failed, for a search that requires full coverage.
        let failures: [String]
    }

    /// Validates, probes, scatters to the owning workers (retrying failed ones on replicas),
    /// merges, and reports coverage. `timeout` is what is left of the caller's deadline. It
    /// runs on the caller's executor (a framed connection's event loop), never on the actor.
    nonisolated func search(_ request: Quiver_V1_SearchRequest, timeout: Duration?) async throws(CoordinatorError) -> Quiver_V1_SearchResponse {
        let started = ContinuousClock.now
        let prepared = try prepareSearch(request)
        // Whatever the caller asked for, a search ends within the server's limit.
        let outcome = try await scatterSearch(prepared, deadline: Self.searchDeadline(started: started, timeout: timeout))
        let response = try Self.response(outcome, rows: 0 ..< prepared.queries.rows, of: prepared)
        Self.recordSearch(response, queries: prepared.queries.rows, collection: prepared.serving.name, started: started)
        return response
    }

    /// When a search that started at `started` with `timeout` left must have its answers.
    nonisolated static func searchDeadline(started: ContinuousClock.Instant, timeout: Duration?) -> ContinuousClock.Instant {
        started + min(timeout ?? QuiverGRPC.maxSearchTime, QuiverGRPC.maxSearchTime) - replyMargin
    }

    nonisolated static func recordSearch(_ response: Quiver_V1_SearchResponse, queries: Int, collection: String,
                                         started: ContinuousClock.Instant) {
        let dimensions = [("collection", collection)]
        let elapsed = ContinuousClock.now - started
        Timer(label: QuiverMetrics.searchDuration, dimensions: dimensions)
            .recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        Counter(label: QuiverMetrics.searchQueries, dimensions: dimensions).increment(by: Int64(queries))
        if response.coverage.listsAnswered < response.coverage.listsProbed {
            Counter(label: QuiverMetrics.searchPartial, dimensions: dimensions).increment()
        }
    }

    /// Checks `request` against its collection and prepares its queries; no worker is asked.
    nonisolated func prepareSearch(_ request: Quiver_V1_SearchRequest) throws(CoordinatorError) -> PreparedSearch {
        let serving = try serving(request.collection)
        let model = serving.model
        let queryMatrix = request.queries
        let queryCount = Int(queryMatrix.rows)
        var requestedNprobe = Int(request.nprobe)
        var reorderK = request.hasReorderK ? Int(request.reorderK) : nil
        let target = Double(request.recallTarget)
        guard target.isFinite, target >= 0, target < 1 else {
            throw .invalidArgument("recall_target is a recall@10 between 0 and 1 (0 = the collection's \(serving.settings.recallTarget)), got \(request.recallTarget)")
        }
        if target > 0, requestedNprobe > 0 || reorderK != nil {
            throw .invalidArgument("recall_target chooses nprobe and reorder_k itself; set either recall_target or nprobe/reorder_k, not both")
        }
        // No knobs: the settings calibrated for the target (the collection's by default). They
        // were found for k = 10; a larger k re-ranks proportionally deeper.
        if requestedNprobe == 0, reorderK == nil,
           let calibrated = serving.searchDefaults?.settings(for: target > 0 ? target : serving.settings.recallTarget, rows: serving.vectorCount) {
            requestedNprobe = min(calibrated.nprobe, model.nlist)
            if serving.settings.storesRawVectors && calibrated.reorderK > 0 {
                let k = Int(request.k)
                reorderK = min(SearchSettings.maxReorderK, max(k, calibrated.reorderK * max(1, (k + calibrated.k - 1) / calibrated.k)))
            } else {
                reorderK = 0
            }
        }
        let settings: SearchSettings
        do {
            settings = try SearchSettings(k: Int(request.k), nprobe: requestedNprobe, reorderK: reorderK,
                                          queryCount: queryCount, nlist: model.nlist,
                                          storesRawVectors: serving.settings.storesRawVectors,
                                          maxMessageBytes: QuiverGRPC.maxMessageBytes)
        } catch {
            throw error.isTooLarge ? .resourceExhausted(error.description) : .invalidArgument(error.description)
        }
        guard Int(queryMatrix.dimension) == model.dimension else {
            throw .invalidArgument("queries have dimension \(queryMatrix.dimension), collection \"\(serving.name)\" expects \(model.dimension)")
        }
        var queries: Matrix
        do {
            queries = Matrix(rows: queryCount, dimension: model.dimension, values: try queryMatrix.values(field: "queries"))
        } catch {
            throw .invalidArgument(error.description)
        }
        if let bad = Kernels.firstNonFinite(queries.values) {
            throw .invalidArgument("query \(bad / model.dimension) has a non-finite value \(queries.values[bad]) at component \(bad % model.dimension)")
        }
        model.prepare(&queries)
        return PreparedSearch(serving: serving, settings: settings, queries: queries, requireFullCoverage: request.requireFullCoverage)
    }

    /// The answer for rows `rows` of `outcome`, the rows of the search `prepared`: its results,
    /// and its own coverage (a search that requires full coverage fails on its own rows' gaps).
    nonisolated static func response(_ outcome: ScatterOutcome, rows: Range<Int>,
                                     of prepared: PreparedSearch) throws(CoordinatorError) -> Quiver_V1_SearchResponse {
        let coverage = outcome.coverage
        let probed = coverage.listsProbed[rows].reduce(0, +)
        let answered = coverage.listsAnswered[rows].reduce(0, +)
        if prepared.requireFullCoverage && answered < probed {
            let reason = outcome.failures.isEmpty ? "no live replica holds some probed lists" : outcome.failures.joined(separator: "; ")
            throw .unavailable("answered \(answered) of \(probed) probed lists (require_full_coverage is set): \(reason)")
        }
        let k = outcome.results.k
        let slots = rows.lowerBound * k ..< rows.upperBound * k
        let metric = prepared.serving.model.configuration.metric
        var response = Quiver_V1_SearchResponse()
        response.results = Quiver_V1_TopK(queryCount: rows.count, k: k, ids: Array(outcome.results.ids[slots]),
                                          scores: outcome.results.distances[slots].map { metric.score(fromDistance: $0) })
        var wireCoverage = Quiver_V1_Coverage()
        wireCoverage.listsProbed = UInt64(probed)
        wireCoverage.listsAnswered = UInt64(answered)
        wireCoverage.workersQueried = UInt32(coverage.workersQueried)
        wireCoverage.workersAnswered = UInt32(coverage.workersAnswered)
        response.coverage = wireCoverage
        if answered < probed || coverage.listsAnswered[rows] != coverage.listsProbed[rows] {
            response.queryCoverage = WireArrays.pack(rows.map { coverage.fraction(ofQuery: $0) })
        }
        response.modelVersion = prepared.serving.model.version
        response.shardMapVersion = prepared.serving.shardMap.version
        return response
    }

    /// Probes, scatters and merges the queries of `prepared` (one search's, or several
    /// coalesced searches' stacked), retrying lists whose worker failed on other replicas.
    nonisolated func scatterSearch(_ prepared: PreparedSearch,
                                   deadline: ContinuousClock.Instant?) async throws(CoordinatorError) -> ScatterOutcome {
        let serving = prepared.serving
        let settings = prepared.settings
        let model = serving.model
        let queryCount = prepared.queries.rows
        let rotation = nextRotation()
        Counter(label: QuiverMetrics.searchScatters, dimensions: [("collection", serving.name)]).increment()
        let nprobe = settings.nprobe
        let threads = threads
        let probed: (lists: [Int32], distances: [Float])
        // Small batches probe inline; big ones would hold the thread (an event loop) too long.
        if queryCount * model.nlist * model.dimension < 1 << 24 {
            probed = prepared.queries.values.withUnsafeBufferPointer { model.probeWithDistances($0.baseAddress!, count: queryCount, nprobe: nprobe) }
        } else {
            do {
                probed = try await offload {
                    prepared.queries.values.withUnsafeBufferPointer {
                        model.probeWithDistances($0.baseAddress!, count: queryCount, nprobe: nprobe, threads: threads)
                    }
                }
            } catch {
                throw .internalError("probing: \(error)")
            }
        }
        let probes = probed.lists
        // For inner product a list's coarse score ⟨q, c⟩ is its offset in the workers' scan:
        // sent along, they need not compute it again (L2 scans build a table per list instead).
        let probeScores: ProbeScores?
        do {
            probeScores = model.configuration.metric.usesInnerProduct
                ? try ProbeScores(probes: probes, scores: probed.distances.map { -$0 }, nprobe: nprobe) : nil
        } catch {
            throw .internalError(error.description)
        }
        var listsProbed = [Int](repeating: 0, count: queryCount)
        for query in 0 ..< queryCount {
            listsProbed[query] = probes[query * nprobe ..< (query + 1) * nprobe].reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
        }
        var merger = ResultMerger(queryCount: queryCount, k: settings.k, metric: model.configuration.metric,
                                  listsProbed: listsProbed)
        var plan: ScatterPlan
        do {
            plan = try ScatterPlan(probes: probes, queryCount: queryCount, nprobe: nprobe, shardMap: serving.shardMap,
                                   unavailable: pool.down, replicas: serving.replicas, rotation: rotation)
        } catch {
            throw .internalError(error.description)
        }
        var excluded = Set<WorkerID>()
        var failures: [String] = []
        // Each round retries what the previous one could not answer on replicas not yet tried.
        let replicas = serving.shardMap.replicationFactor
        for round in 0 ... replicas {
            // A cancelled search (its caller gave up) is not retried elsewhere.
            if Task.isCancelled { throw .cancelled("search cancelled by the caller") }
            let left = deadline.map { ContinuousClock.now.duration(to: $0) }
            if let left, left <= .zero { break }
            // While other replicas remain, one attempt gets its share of the time left, so a
            // worker that hangs (a cut link, a frozen process) leaves time to ask a replica.
            let remaining = left.map { round < replicas - 1 ? $0 / (replicas - round) : $0 }
            var answers: [(ShardRequest, Result<Quiver_V1_SearchListsResponse, any Error>)] = []
            if plan.requests.count == 1, let shardRequest = plan.requests.first {
                // One worker involved: call it directly, without a child task to schedule.
                let wire = try searchListsRequest(shardRequest, prepared: prepared.queries, settings: settings, serving: serving,
                                                  probeScores: probeScores)
                do {
                    answers = [(shardRequest, .success(try await pool.searchLists(wire, on: shardRequest.worker, timeout: remaining)))]
                } catch {
                    answers = [(shardRequest, .failure(error))]
                }
            } else {
                let wires = try plan.requests.map { shardRequest throws(CoordinatorError) in
                    try searchListsRequest(shardRequest, prepared: prepared.queries, settings: settings, serving: serving, probeScores: probeScores)
                }
                answers = await withTaskGroup(of: (ShardRequest, Result<Quiver_V1_SearchListsResponse, any Error>).self) { group in
                    for (shardRequest, wire) in zip(plan.requests, wires) {
                        group.addTask {
                            do {
                                return (shardRequest, .success(try await self.pool.searchLists(wire, on: shardRequest.worker, timeout: remaining)))
                            } catch {
                                return (shardRequest, .failure(error))
                            }
                        }
                    }
                    var answers: [(ShardRequest, Result<Quiver_V1_SearchListsResponse, any Error>)] = []
                    for await answer in group { answers.append(answer) }
                    return answers
                }
            }
            var unanswered: [ProbedList] = []
            for (shardRequest, result) in answers {
                do {
                    let response = try result.get()
                    let skipped = try shardRequest.probedLists(
                        offsets: WireArrays.unpack(response.skippedOffsets, as: UInt32.self, field: "skipped_offsets"),
                        lists: WireArrays.unpack(response.skippedListIds, as: Int32.self, field: "skipped_list_ids"))
                    let results = response.results
                    guard Int(results.queryCount) == shardRequest.queries.count else {
                        throw ScatterError.malformedAnswer(worker: shardRequest.worker, "\(results.queryCount) result rows for \(shardRequest.queries.count) queries")
                    }
                    try merger.add(shardRequest, answerK: Int(results.k), ids: results.unpackedIDs(),
                                   scores: results.unpackedScores(),
                                   exactScores: WireArrays.unpack(response.exactScores, as: Float.self, field: "exact_scores"),
                                   skipped: skipped)
                    if !skipped.isEmpty {
                        unanswered += skipped
                        excluded.insert(shardRequest.worker)
                    }
                } catch {
                    // A request the worker refuses as such fails the same everywhere: no retry.
                    if let refusal = error as? RPCError, refusal.code.isRequestFault {
                        throw CoordinatorError.wrapping(refusal, context: "worker \(shardRequest.worker) refused the search")
                    }
                    merger.recordFailure(of: shardRequest)
                    unanswered += shardRequest.probedLists
                    excluded.insert(shardRequest.worker)
                    failures.append("worker \(shardRequest.worker): \((error as? RPCError)?.message ?? "\(error)")")
                }
            }
            guard !unanswered.isEmpty else { break }
            do {
                plan = try ScatterPlan(lists: unanswered, shardMap: serving.shardMap,
                                       unavailable: pool.down.union(excluded), replicas: serving.replicas, rotation: rotation)
            } catch {
                throw .internalError(error.description)
            }
            if plan.requests.isEmpty { break }
        }
        // A big batch's merge (sorting every query's candidates) runs on a GCD thread: inline it
        // would hold the event loop this search runs on, and every other call on that loop, for
        // as long (a 3,000-query batch re-ranking 200 candidates each: ≈ 150 ms of CPU in a release
        // build, ≈ 2 s in a debug one, long enough under load for a client's keepalive ping to
        // go unanswered and the connection to be dropped).
        let reorderK = settings.reorderK
        let results: SearchResults
        if queryCount * max(settings.k, reorderK) < Self.inlineMergeSlots {
            results = merger.finish(reorderK: reorderK)
        } else {
            let finished = merger
            do {
                results = try await offload { finished.finish(reorderK: reorderK) }
            } catch {
                throw .internalError("merging: \(error)")
            }
        }
        return ScatterOutcome(results: results, coverage: merger.coverage, failures: failures)
    }

    nonisolated private func searchListsRequest(_ shardRequest: ShardRequest, prepared: Matrix, settings: SearchSettings,
                                                serving: Serving, probeScores: ProbeScores?) throws(CoordinatorError) -> Quiver_V1_SearchListsRequest {
        var wire = Quiver_V1_SearchListsRequest()
        wire.collection = serving.name
        wire.modelVersion = serving.model.version
        wire.shardMapVersion = serving.shardMap.version
        wire.k = UInt32(settings.k)
        wire.reorderK = UInt32(settings.reorderK)
        let queries = shardRequest.queries.count == prepared.rows ? prepared : prepared.gathering(shardRequest.queries)
        wire.queries = Quiver_V1_FloatMatrix(rows: queries.rows, dimension: queries.dimension, values: queries.values)
        wire.probeOffsets = WireArrays.pack(shardRequest.probeOffsets)
        wire.probeListIds = WireArrays.pack(shardRequest.probeListIDs)
        if let probeScores {
            do {
                wire.probeCoarseScores = WireArrays.pack(try probeScores.scores(for: shardRequest))
            } catch {
                throw .internalError(error.description)
            }
        }
        return wire
    }
}
