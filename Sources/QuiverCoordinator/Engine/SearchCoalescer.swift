import NIOCore
import QuiverCluster
import QuiverIndex
import QuiverProtocol
import Synchronization

/// What searches must share to be answered by one scatter: the collection's state as they saw
/// it, their settings and their time limit.
struct SearchCoalescingKey: Hashable, Sendable {
    let collection: String
    let incarnation: UInt64
    let modelVersion: UInt64
    let shardMapVersion: UInt64
    let k: Int
    let nprobe: Int
    let reorderK: Int
    /// The caller's stated limit in milliseconds (0 = none): searches that arrive together
    /// with the same limit share a deadline to within a turn.
    let limitMs: UInt32
}

/// Answers the small searches that arrive together (read in one turn of an event loop, or on
/// gRPC queued while another is in flight) together: those that share a collection state,
/// settings and time limit are stacked into one batch, probed with one matrix product, sent to
/// each worker as one request, merged once, and split back into one answer per search, each
/// with its own coverage.
///
/// Concurrent clients gain most: the searches read in one turn become one worker request
/// instead of one each, and the per-message costs of both hops (decoding, encoding, system
/// calls and thread wake-ups, several times the search itself on a small machine) are paid
/// once per batch. A lone search waits for nothing: a turn ends after the reads already
/// there, so it leaves as soon as it would have alone.
///
/// Measured alternatives (bench/results/serving-coalesce.md): splitting a turn's batch into
/// parts scanned in parallel, or holding searches while a batch is out, both cost more (more
/// messages, more wake-ups) than they won on two cores.
final class SearchCoalescer: Sendable {
    /// A search with more queries than this is a batch of its own and runs alone.
    static let maxMemberQueries = 16
    /// Queries in one coalesced scatter.
    static let maxBatchQueries = 64
    /// A batch's answer must fit one message, as each member's does alone.
    static let maxAnswerSlots = SearchSettings.maxAnswerSlots(maxMessageBytes: QuiverGRPC.maxMessageBytes)

    /// One search waiting for its turn to end.
    struct Member: Sendable {
        let request: Quiver_V1_SearchRequest
        let started: ContinuousClock.Instant
        /// What was left of the caller's time limit when it arrived.
        let timeout: Duration?
        /// The limit as the caller stated it (`timeout_ms`, 0 = none): searches sent with the
        /// same limit in one turn share a deadline to within that turn.
        let limitMs: UInt32
        /// Called exactly once, from any thread.
        let reply: @Sendable (Result<Quiver_V1_SearchResponse, CoordinatorError>) -> Void
        /// Registers what runs when the caller gives up (at once if it already has). The caller
        /// keeps the action until its call ends, so it must not hold the member (a cycle).
        let onCancel: @Sendable (@escaping @Sendable () -> Void) -> Void
    }

    /// Where searches gather: an event loop (its turn ends after the reads of one wake-up), or
    /// the shared pool of async callers.
    struct Turn: Sendable {
        let id: ObjectIdentifier
        /// The loop, whose executor the batch's task runs on (nil: the async callers' turn,
        /// whose batch runs on the loop whose thread gathered it).
        let executor: EventLoopExecutor?

        static func loop(_ executor: EventLoopExecutor) -> Turn {
            Turn(id: ObjectIdentifier(executor.loop), executor: executor)
        }

        static let pool = Turn(id: ObjectIdentifier(SearchCoalescer.self), executor: nil)
    }

    private let coordinator: Coordinator
    /// The searches waiting for the end of a turn, per turn.
    private let waiting = Mutex<[ObjectIdentifier: [Member]]>([:])
    /// Searches in flight through `search` (the shared pool's turn).
    private let poolSearches = Atomic<Int>(0)
    /// Where the pool's batches run: on the loop whose thread gathered them.
    private let poolExecutor = LoopFollowingExecutor()

    init(coordinator: Coordinator) {
        self.coordinator = coordinator
    }

    /// Takes a search that arrived on an event loop (and runs there); `member.reply` is called
    /// exactly once, on that loop or another thread.
    func submit(_ member: Member, turn: Turn) {
        // The first search of a turn ends it: after the reads already there, so every search
        // they bring joins.
        if enqueue(member, turn: turn), let loop = turn.executor?.loop { loop.execute { self.flush(turn) } }
    }

    /// True when `member` is the first of its turn.
    private func enqueue(_ member: Member, turn: Turn) -> Bool {
        waiting.withLock { waiting in
            waiting[turn.id, default: []].append(member)
            return waiting[turn.id]!.count == 1
        }
    }

    /// Answers one search from an async caller (gRPC, on the shared pool); cancelling the
    /// caller's task answers it as cancelled. While no other such search is in flight it runs
    /// directly in the caller's task: gathering costs a yield and a task per batch, which only
    /// pays when others may join.
    func search(_ request: Quiver_V1_SearchRequest, timeout: Duration?) async -> Result<Quiver_V1_SearchResponse, CoordinatorError> {
        let alone = poolSearches.add(1, ordering: .relaxed).oldValue == 0
        defer { poolSearches.subtract(1, ordering: .relaxed) }
        if alone {
            do throws(CoordinatorError) {
                return .success(try await coordinator.search(request, timeout: timeout))
            } catch {
                return .failure(error)
            }
        }
        let started = ContinuousClock.now
        let cancellation = CancelHook()
        let answer = AnswerSlot()
        let member = Member(request: request, started: started, timeout: timeout, limitMs: timeout?.timeoutMilliseconds ?? 0,
                            reply: answer.put, onCancel: cancellation.register)
        if enqueue(member, turn: .pool) {
            // The first search gathers the others: those whose messages are already queued on
            // the pool run (and join) before it resumes.
            await Task.yield()
            flush(.pool)
        }
        defer { cancellation.finish() }
        return await withTaskCancellationHandler {
            await answer.take()
        } onCancel: {
            cancellation.fire()
        }
    }

    /// The turn ended: prepares each waiting search (refusing bad ones at once), groups the
    /// compatible ones, and starts one task per group.
    private func flush(_ turn: Turn) {
        let members = waiting.withLock { $0.removeValue(forKey: turn.id) ?? [] }
        var groups: [[(Member, Coordinator.PreparedSearch)]] = []
        var groupRows: [Int] = []
        var open: [SearchCoalescingKey: Int] = [:]
        for member in members {
            let prepared: Coordinator.PreparedSearch
            do {
                prepared = try coordinator.prepareSearch(member.request)
            } catch {
                member.reply(.failure(error))
                continue
            }
            let rows = prepared.queries.rows
            let key = prepared.coalescingKey(limitMs: member.limitMs)
            let slotsPerQuery = max(prepared.settings.k, prepared.settings.reorderK)
            if rows <= Self.maxMemberQueries, let index = open[key], groupRows[index] + rows <= Self.maxBatchQueries,
               (groupRows[index] + rows) * slotsPerQuery <= Self.maxAnswerSlots {
                groups[index].append((member, prepared))
                groupRows[index] += rows
            } else {
                if rows <= Self.maxMemberQueries { open[key] = groups.count }
                groups.append([(member, prepared)])
                groupRows.append(rows)
            }
        }
        for group in groups { run(group, executor: turn.executor) }
    }

    /// Scatters one group's queries as one batch and answers each member from its rows. A
    /// member whose caller cancels is answered at once; the batch stops when all have.
    private func run(_ members: [(Member, Coordinator.PreparedSearch)], executor: EventLoopExecutor?) {
        let coordinator = coordinator
        let first = members[0].1
        let batch: Coordinator.PreparedSearch
        if members.count == 1 {
            batch = first
        } else {
            var values = [Float]()
            values.reserveCapacity(members.reduce(0) { $0 + $1.1.queries.values.count })
            for (_, prepared) in members { values += prepared.queries.values }
            let queries = Matrix(rows: values.count / first.queries.dimension, dimension: first.queries.dimension, values: values)
            batch = Coordinator.PreparedSearch(serving: first.serving, settings: first.settings, queries: queries, requireFullCoverage: false)
        }
        // Members share a time limit (the key), so their deadlines differ by less than a turn.
        let deadline = members.map { Coordinator.searchDeadline(started: $0.0.started, timeout: $0.0.timeout) }.min()!
        let answered = MemberAnswers(count: members.count)
        // A pool batch (gRPC) runs on the loop whose thread gathered it, as its callers do: an
        // unstructured task would otherwise start on the global pool, a third set of threads to
        // wake and hand answers across.
        let preference: any TaskExecutor = executor ?? poolExecutor
        let task = Task(executorPreference: preference) {
            let outcome: Result<Coordinator.ScatterOutcome, CoordinatorError>
            do throws(CoordinatorError) {
                outcome = .success(try await coordinator.scatterSearch(batch, deadline: deadline))
            } catch {
                outcome = .failure(error)
            }
            var row = 0
            for (index, (member, prepared)) in members.enumerated() {
                let rows = row ..< row + prepared.queries.rows
                row = rows.upperBound
                guard answered.claim(index) else { continue }
                let answer = outcome.flatMap { outcome in
                    Result { () throws(CoordinatorError) in try Coordinator.response(outcome, rows: rows, of: prepared) }
                }
                if case .success(let response) = answer {
                    Coordinator.recordSearch(response, queries: rows.count, collection: prepared.serving.name, started: member.started)
                }
                member.reply(answer)
            }
        }
        for (index, (member, _)) in members.enumerated() {
            // Captures the reply alone, not the member: the member holds the caller's hook,
            // which holds this action until the call ends.
            let reply = member.reply
            member.onCancel {
                guard answered.claim(index) else { return }
                reply(.failure(.cancelled("search cancelled by the caller")))
                if answered.allClaimed { task.cancel() }
            }
        }
    }
}

/// Which members of a coalesced batch have been answered (by the batch, or by their cancel).
private final class MemberAnswers: Sendable {
    private let claimed: Mutex<[Bool]>

    init(count: Int) { claimed = Mutex([Bool](repeating: false, count: count)) }

    /// True for the first claim of `index` only.
    func claim(_ index: Int) -> Bool {
        claimed.withLock { claimed in
            defer { claimed[index] = true }
            return !claimed[index]
        }
    }

    var allClaimed: Bool { claimed.withLock { !$0.contains(false) } }
}

/// An answer that may arrive before or after its caller waits for it.
private final class AnswerSlot: Sendable {
    private typealias Answer = Result<Quiver_V1_SearchResponse, CoordinatorError>
    private let state = Mutex<(answer: Answer?, waiter: CheckedContinuation<Answer, Never>?)>((nil, nil))

    func put(_ answer: Result<Quiver_V1_SearchResponse, CoordinatorError>) {
        let waiter = state.withLock { state -> CheckedContinuation<Answer, Never>? in
            guard let waiter = state.waiter else {
                state.answer = answer
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: answer)
    }

    func take() async -> Result<Quiver_V1_SearchResponse, CoordinatorError> {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Answer? in
                if let answer = state.answer { return answer }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
