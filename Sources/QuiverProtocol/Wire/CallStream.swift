import GRPCCore
import Synchronization

/// Unary-style calls carried as messages on one long-lived bidirectional stream, matched by a
/// request id (SearchStream, SearchListsStream). A gRPC call costs stream set-up, headers and
/// several task hand-offs on both ends; a message on an open stream costs a frame. For many
/// small concurrent searches this is the difference (`quiver bench-transport` on the 2-core
/// development machine: 7.0k unary echoes/s against 17.7k messages/s at 16 in flight).
///
/// The stream opens on the first call and again after it ends or fails. Calls waiting when it
/// fails fail with its error; a call whose time limit passes fails with DEADLINE_EXCEEDED (the
/// limit also travels with the request, so the far end stops working on it); a call whose task
/// is cancelled sends a cancel message, so the far end stops too.
public final class CallStream<Request: Sendable, Response: Sendable>: Sendable {
    /// Runs the stream: sends every element of `requests`, hands every response to `receive`,
    /// and returns (or throws) when the stream ends.
    public typealias Open = @Sendable (_ requests: AsyncStream<Request>,
                                       _ receive: @escaping @Sendable (Response) -> Void) async throws -> Void

    private struct Pending {
        let continuation: CheckedContinuation<Response, any Error>
        let deadline: ContinuousClock.Instant?
    }

    private struct State {
        var feed: AsyncStream<Request>.Continuation?
        var generation = 0
        var pending: [UInt64: Pending] = [:]
        var nextID: UInt64 = 0
        var closed = false
    }

    private let open: Open
    private let setID: @Sendable (inout Request, UInt64) -> Void
    private let responseID: @Sendable (Response) -> UInt64
    private let cancelMessage: (@Sendable (UInt64) -> Request)?
    private let state = Mutex(State())
    /// How often waiting calls are checked against their time limits.
    private let deadlineCheck: Duration

    /// `cancelMessage`, when given, builds the message that cancels the call with an id.
    public init(open: @escaping Open, setID: @escaping @Sendable (inout Request, UInt64) -> Void,
                responseID: @escaping @Sendable (Response) -> UInt64, cancelMessage: (@Sendable (UInt64) -> Request)? = nil,
                deadlineCheck: Duration = .milliseconds(20)) {
        self.open = open
        self.setID = setID
        self.responseID = responseID
        self.cancelMessage = cancelMessage
        self.deadlineCheck = deadlineCheck
    }

    /// Sends `request` and waits for its response, at most `timeout` when given.
    public func call(_ request: Request, timeout: Duration?) async throws -> Response {
        var request = request
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        setID(&request, id)
        let deadline = timeout.map { ContinuousClock.now + $0 }
        let message = request
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // Cancelled before it was sent: the cancellation handler found nothing to cancel.
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                let failure = state.withLock { state -> RPCError? in
                    if state.closed { return RPCError(code: .unavailable, message: "the call stream is closed") }
                    if state.feed == nil { startStream(&state) }
                    state.pending[id] = Pending(continuation: continuation, deadline: deadline)
                    state.feed!.yield(message)
                    return nil
                }
                if let failure { continuation.resume(throwing: failure) }
            }
        } onCancel: {
            let cancelled = state.withLock { state -> Pending? in
                guard let pending = state.pending.removeValue(forKey: id) else { return nil }
                if let cancelMessage { state.feed?.yield(cancelMessage(id)) }
                return pending
            }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
    }

    /// True once `close` has run: every call fails from then on.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Ends the stream once it has sent what it holds; later calls fail.
    public func close() {
        state.withLock { state in
            state.closed = true
            state.feed?.finish()
        }
    }

    private func startStream(_ state: inout State) {
        let (requests, feed) = AsyncStream.makeStream(of: Request.self)
        state.feed = feed
        state.generation += 1
        let generation = state.generation
        Task(executorPreference: EventLoopExecutor()) { [self] in
            var failure: (any Error)?
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { [self] in
                        try await open(requests) { [self] response in
                            let id = responseID(response)
                            self.state.withLock { $0.pending.removeValue(forKey: id) }?.continuation.resume(returning: response)
                        }
                    }
                    group.addTask { [self] in
                        while !Task.isCancelled {
                            try await Task.sleep(for: deadlineCheck)
                            expireOverdueCalls()
                        }
                    }
                    try await group.next()
                    group.cancelAll()
                }
            } catch {
                failure = error
            }
            let orphans = self.state.withLock { state -> [Pending] in
                guard state.generation == generation else { return [] }
                state.feed?.finish()
                state.feed = nil
                // Calls sent on this stream can no longer be answered.
                defer { state.pending = [:] }
                return Array(state.pending.values)
            }
            let error = failure as? RPCError ?? RPCError(code: .unavailable, message: "the call stream ended"
                + (failure.map { ": \($0)" } ?? " before answering"))
            for pending in orphans { pending.continuation.resume(throwing: error) }
        }
    }

    private func expireOverdueCalls() {
        let now = ContinuousClock.now
        let overdue = state.withLock { state -> [Pending] in
            let ids = state.pending.compactMap { id, pending in pending.deadline.map { $0 <= now } == true ? id : nil }
            return ids.compactMap { state.pending.removeValue(forKey: $0) }
        }
        for pending in overdue {
            pending.continuation.resume(throwing: RPCError(code: .deadlineExceeded, message: "no answer within the time limit"))
        }
    }

    /// Serves a call stream: answers each request of `requests` concurrently with `answer` and
    /// writes each response as soon as it is ready (so responses may leave out of order). A
    /// request for which `cancelledID` returns an id cancels the task answering that id. When
    /// `stop` fires (the server is shutting down gracefully) it reads no further requests,
    /// answers those it has, and ends the stream, so an open stream never holds a shutdown up.
    ///
    /// At most `maxInFlight` requests are read and not yet answered *and written*: past that the
    /// reader waits, so a client that sends faster than it is served, or never reads its answers,
    /// is held back by HTTP/2 flow control instead of growing the server's memory.
    public static func serve(_ requests: RPCAsyncSequence<Request, any Error>, writer: RPCWriter<Response>,
                             stop: ShutdownSignal? = nil, maxInFlight: Int = CallStreamLimits.maxInFlightPerStream,
                             requestID: @escaping @Sendable (Request) -> UInt64,
                             cancelledID: @escaping @Sendable (Request) -> UInt64? = { _ in nil },
                             answer: @escaping @Sendable (Request) async -> Response) async throws {
        let (incoming, accept) = AsyncStream.makeStream(of: Request.self)
        let (outbox, post) = AsyncStream.makeStream(of: Response.self)
        let running = RunningCalls()
        let slots = AsyncSlots(maxInFlight)
        stop?.onStop {
            accept.finish()
            slots.close()
        }
        try await withThrowingTaskGroup(of: CallStreamRole.self) { group in
            group.addTask {
                defer { accept.finish() }
                for try await request in requests {
                    // A cancel always gets through; a new call waits for a free slot.
                    if cancelledID(request) == nil, await !slots.acquire() { break }
                    accept.yield(request)
                }
                return .reader
            }
            group.addTask {
                await withDiscardingTaskGroup { calls in
                    for await request in incoming {
                        if let id = cancelledID(request) {
                            running.cancel(id)
                            continue
                        }
                        let id = requestID(request)
                        running.queue(id)
                        calls.addTask {
                            running.begin(id)
                            defer { running.end(id) }
                            post.yield(await answer(request))
                        }
                    }
                }
                post.finish()
                return .answers
            }
            group.addTask {
                for await response in outbox {
                    try await writer.write(response)
                    slots.release()
                }
                return .writer
            }
            // Everything read has been answered and written: stop reading (after a stop, the
            // reader may still be waiting on the client).
            while let role = try await group.next() {
                if role == .writer {
                    group.cancelAll()
                    break
                }
            }
        }
    }
}

/// The tasks answering a served call stream, by request id, so a cancel message can reach one.
private final class RunningCalls: Sendable {
    private struct Handle: @unchecked Sendable {
        let task: UnsafeCurrentTask
    }

    private enum Entry {
        /// Read, its task not yet started; `cancelled` if a cancel came first.
        case queued(cancelled: Bool)
        case running(Handle)
    }

    private let entries = Mutex<[UInt64: Entry]>([:])

    /// A request for `id` was read; its task is about to be created.
    func queue(_ id: UInt64) {
        entries.withLock { $0[id] = .queued(cancelled: false) }
    }

    /// Registers the current task as answering `id` (cancelled at once if a cancel came first).
    func begin(_ id: UInt64) {
        withUnsafeCurrentTask { task in
            guard let task else { return }
            let handle = Handle(task: task)
            entries.withLock { entries in
                if case .queued(cancelled: true) = entries[id] { handle.task.cancel() }
                entries[id] = .running(handle)
            }
        }
    }

    /// Unregisters `id`; after this its task may end, so no cancel may touch it.
    func end(_ id: UInt64) {
        entries.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// Cancels the task answering `id`; an id already answered (or never seen) is ignored.
    func cancel(_ id: UInt64) {
        entries.withLock { entries in
            switch entries[id] {
            case .running(let handle): handle.task.cancel()
            case .queued: entries[id] = .queued(cancelled: true)
            case nil: break
            }
        }
    }
}

public enum CallStreamLimits {
    /// Calls one served stream holds at once (read, not yet answered and written).
    public static let maxInFlightPerStream = 256
}

/// A counting semaphore for tasks: `acquire` waits while every slot is taken.
final class AsyncSlots: Sendable {
    private struct State {
        var free: Int
        var waiting: [CheckedContinuation<Bool, Never>] = []
        var closed = false
    }

    private let state: Mutex<State>

    init(_ count: Int) { state = Mutex(State(free: max(1, count))) }

    /// Takes a slot, waiting for one if needed; false once closed.
    func acquire() async -> Bool {
        await withCheckedContinuation { continuation in
            let granted = state.withLock { state -> Bool? in
                if state.closed { return false }
                if state.free > 0 {
                    state.free -= 1
                    return true
                }
                state.waiting.append(continuation)
                return nil
            }
            if let granted { continuation.resume(returning: granted) }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if state.waiting.isEmpty {
                state.free += 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume(returning: true)
    }

    /// Wakes every waiter with false; later acquires fail at once.
    func close() {
        let waiters = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.closed = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }
}

/// Which part of `CallStream.serve` finished.
private enum CallStreamRole { case reader, answers, writer }

/// Fires once, when a server begins its graceful shutdown; long-lived streams listen to it.
public final class ShutdownSignal: Sendable {
    private let state = Mutex<(stopped: Bool, actions: [@Sendable () -> Void])>((false, []))

    public init() {}

    /// Runs `action` when the signal fires (at once if it already has).
    public func onStop(_ action: @escaping @Sendable () -> Void) {
        let stopped = state.withLock { state in
            if !state.stopped { state.actions.append(action) }
            return state.stopped
        }
        if stopped { action() }
    }

    public func fire() {
        let actions = state.withLock { state in
            state.stopped = true
            defer { state.actions = [] }
            return state.actions
        }
        for action in actions { action() }
    }
}

/// A message of a call stream: requests and responses carry the request id.
public protocol CallStreamMessage: Sendable {
    var requestID: UInt64 { get set }
}

/// A call-stream request that can also say "cancel the call with this id".
public protocol CancellableCallRequest: CallStreamMessage {
    init()
    var cancel: Bool { get set }
}

extension Quiver_V1_SearchStreamRequest: CancellableCallRequest {}
extension Quiver_V1_SearchStreamResponse: CallStreamMessage {}
extension Quiver_V1_SearchListsStreamRequest: CancellableCallRequest {}
extension Quiver_V1_SearchListsStreamResponse: CallStreamMessage {}

extension CallStream where Request: CancellableCallRequest, Response: CallStreamMessage {
    /// A call stream over a generated bidirectional-streaming method: `call` starts it with the
    /// request stream and the handler of its responses, e.g.
    /// `{ try await client.searchStream(request: $0, options: options, onResponse: $1) }`.
    public convenience init(
        metadata: Metadata = [:],
        call: @escaping @Sendable (StreamingClientRequest<Request>,
                                   @escaping @Sendable (StreamingClientResponse<Response>) async throws -> Void) async throws -> Void
    ) {
        self.init(open: { requests, receive in
            try await call(StreamingClientRequest(metadata: metadata) { writer in
                for await request in requests { try await writer.write(request) }
            }) { response in
                for try await message in response.messages { receive(message) }
            }
        }, setID: { $0.requestID = $1 }, responseID: \.requestID, cancelMessage: { id in
            var cancel = Request()
            cancel.requestID = id
            cancel.cancel = true
            return cancel
        })
    }

    /// `serve` for request types that carry their id and cancel flag.
    public static func serve(_ requests: RPCAsyncSequence<Request, any Error>, writer: RPCWriter<Response>,
                             stop: ShutdownSignal?, answer: @escaping @Sendable (Request) async -> Response) async throws {
        try await serve(requests, writer: writer, stop: stop, requestID: \.requestID,
                        cancelledID: { $0.cancel ? $0.requestID : nil }, answer: answer)
    }
}

extension Duration {
    /// This duration as a `timeout_ms` field: whole milliseconds, at least 1 (0 means none).
    public var timeoutMilliseconds: UInt32 {
        UInt32(clamping: max(1, components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000))
    }
}

extension Quiver_V1_CallError {
    public init(_ error: RPCError) {
        self.init()
        code = UInt32(error.code.rawValue)
        message = error.message
    }

    /// The error a unary call would have thrown.
    public var rpcError: RPCError {
        let status = Status.Code(rawValue: Int(code)).flatMap(RPCError.Code.init) ?? .unknown
        return RPCError(code: status, message: message)
    }
}

extension RPCError.Code {
    /// The request itself is at fault: the same request fails on any replica, so it is neither
    /// retried elsewhere nor held against the worker that refused it.
    public var isRequestFault: Bool {
        self == .invalidArgument || self == .resourceExhausted || self == .outOfRange
    }

    /// The worker is alive but not in a state to answer (model or list missing, versions
    /// differ): a replica may answer, and the worker's health is not in question.
    public var isWorkerStateFault: Bool {
        self == .notFound || self == .failedPrecondition || self == .alreadyExists
    }
}
