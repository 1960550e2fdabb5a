import QuiverCluster
import QuiverProtocol
import Synchronization

/// Merges concurrent small searches bound for the same worker into one `SearchLists` call.
///
/// A search leaves at once while fewer than `callsPerWorker` calls to its worker are out;
/// otherwise it waits, and when a call to that worker ends, everything waiting that can share a
/// call leaves together. There is no timer: a lone search is never held back, and under load the
/// batches grow by themselves, so the per-call cost (both gRPC ends, framing, thread wake-ups)
/// is paid per batch instead of per query. Large requests bypass it.
final class SearchBatcher: Sendable {
    typealias Request = Quiver_V1_SearchListsRequest
    typealias Response = Quiver_V1_SearchListsResponse

    /// Requests of at most this many queries are merged; larger ones go alone.
    static let mergeableQueries = 16
    /// A merged call carries at most this many queries.
    static let queriesPerCall = 256

    private struct Waiter {
        let id: UInt64
        let request: Request
        let deadline: ContinuousClock.Instant?
        let continuation: CheckedContinuation<Response, any Error>
    }

    private struct Lane {
        var callsOut = 0
        var waiting: [Waiter] = []
    }

    private struct State {
        var lanes: [WorkerID: Lane] = [:]
        var nextID: UInt64 = 0
    }

    private let pool: WorkerPool
    private let callsPerWorker: Int
    private let state = Mutex(State())

    init(pool: WorkerPool, callsPerWorker: Int) {
        self.pool = pool
        self.callsPerWorker = max(1, callsPerWorker)
    }

    /// Answers `request` on `worker`, alone or merged with others waiting for the same worker.
    func searchLists(_ request: Request, on worker: WorkerID, timeout: Duration?) async throws -> Response {
        guard request.queries.rows <= Self.mergeableQueries else {
            return try await pool.searchLists(request, on: worker, timeout: timeout)
        }
        let leaveNow = state.withLock { state in
            guard state.lanes[worker, default: Lane()].callsOut < callsPerWorker else { return false }
            state.lanes[worker, default: Lane()].callsOut += 1
            return true
        }
        if leaveNow {
            defer { callEnded(on: worker) }
            return try await pool.searchLists(request, on: worker, timeout: timeout)
        }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let queued = state.withLock { state in
                    // The slot may have freed up between the check above and now.
                    if state.lanes[worker, default: Lane()].callsOut < callsPerWorker {
                        state.lanes[worker, default: Lane()].callsOut += 1
                        return false
                    }
                    state.lanes[worker, default: Lane()].waiting.append(
                        Waiter(id: id, request: request, deadline: deadline, continuation: continuation))
                    return true
                }
                if !queued {
                    send([Waiter(id: id, request: request, deadline: deadline, continuation: continuation)], to: worker)
                }
            }
        } onCancel: {
            let removed = state.withLock { state -> Waiter? in
                guard let index = state.lanes[worker]?.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.lanes[worker]!.waiting.remove(at: index)
            }
            removed?.continuation.resume(throwing: CancellationError())
        }
    }

    /// A call to `worker` ended: the next batch of waiting searches takes its slot, or the slot
    /// is freed.
    private func callEnded(on worker: WorkerID) {
        let batch = state.withLock { state -> [Waiter] in
            var lane = state.lanes[worker, default: Lane()]
            defer { state.lanes[worker] = lane.callsOut == 0 && lane.waiting.isEmpty ? nil : lane }
            guard let first = lane.waiting.first else {
                lane.callsOut -= 1
                return []
            }
            // Everything that can share a call with the oldest waiter, up to the query cap;
            // the rest keeps its place for the next call.
            var batch: [Waiter] = []
            var queries = 0
            var kept: [Waiter] = []
            for waiter in lane.waiting {
                let rows = Int(waiter.request.queries.rows)
                if waiter.request.canShareCall(with: first.request) && (batch.isEmpty || queries + rows <= Self.queriesPerCall) {
                    batch.append(waiter)
                    queries += rows
                } else {
                    kept.append(waiter)
                }
            }
            lane.waiting = kept
            return batch
        }
        if !batch.isEmpty { send(batch, to: worker) }
    }

    /// Sends `batch` as one call in a task of its own, answers each waiter with its part, then
    /// hands the slot on.
    private func send(_ batch: [Waiter], to worker: WorkerID) {
        Task(executorPreference: EventLoopExecutor()) { [self] in
            defer { callEnded(on: worker) }
            // The call may run until the latest deadline among the searches it carries.
            let deadlines = batch.map(\.deadline)
            let timeout = deadlines.contains(where: { $0 == nil })
                ? nil : deadlines.compactMap { $0 }.max().map { ContinuousClock.now.duration(to: $0) }
            do {
                let combined = try Request.combining(batch.map(\.request))
                let response = try await pool.searchLists(combined, on: worker, timeout: timeout)
                let parts = try response.splitting(queryCounts: batch.map { Int($0.request.queries.rows) })
                for (waiter, part) in zip(batch, parts) { waiter.continuation.resume(returning: part) }
            } catch {
                for waiter in batch { waiter.continuation.resume(throwing: error) }
            }
        }
    }
}
