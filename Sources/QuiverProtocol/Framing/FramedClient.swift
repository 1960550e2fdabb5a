import GRPCCore
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import SwiftProtobuf
import Synchronization

/// How a framed client connects and notices a dead peer.
public struct FramedClientSettings: Sendable {
    /// How long a connection attempt (TCP, TLS and the hello) may take.
    public var connectTimeout: Duration = .seconds(3)
    /// A connection that has heard nothing for this long sends a ping…
    public var pingInterval: Duration = .seconds(10)
    /// …and is closed (failing its calls as UNAVAILABLE) when no answer comes within this.
    public var pingTimeout: Duration = .seconds(10)
    /// After a failed attempt, calls fail at once (UNAVAILABLE, with the attempt's error) for
    /// this long before the next attempt; it doubles with each failure up to `maxBackoff`.
    public var initialBackoff: Duration = .milliseconds(100)
    public var maxBackoff: Duration = .seconds(5)
    /// Data the peer has not acknowledged for this long closes the connection (Linux's
    /// TCP_USER_TIMEOUT), failing its calls as UNAVAILABLE: a peer whose link was cut fails
    /// them at once rather than at their deadlines, and the next call connects afresh, instead
    /// of queueing behind a connection whose retransmissions back off for tens of seconds.
    public var unacknowledgedTimeout: Duration = .seconds(4)
    /// Connections to the server; nil: one per event loop of the group. A call uses the
    /// connection of the loop it runs on, so that its answer needs no thread hand-off.
    public var connections: Int?
    /// nil: a call from an event loop of the group always takes that loop's connection. A
    /// number: it takes the connection with the fewest calls instead when its own loop's
    /// connection carries at least this many more. Concurrent calls from tasks that share one
    /// loop then travel on every connection, and the server reads and answers them on as
    /// many threads, instead of as one batch on one thread (a client whose tasks follow the
    /// loop that answered them, `LoopFollowingExecutor`, stays spread without hand-offs).
    public var spillMargin: Int?

    public init() {}
}

/// Unary-style calls carried as frames on long-lived connections to a framed server (see
/// proto/quiver/v1/framing.proto): the framed counterpart of `CallStream`, with the same
/// contract. A call whose time limit passes fails with DEADLINE_EXCEEDED (the limit also
/// travels with the request, so the far end stops); a cancelled task sends a cancel frame; a
/// connection that fails or closes fails the calls it carried with UNAVAILABLE, and the next
/// call connects again (after a back-off when the last attempt failed).
public final class FramedCallClient<Request: FramedCallRequest, Response: CallStreamResponse & SwiftProtobuf.Message>: Sendable {
    public let address: HostAndPort
    private let method: String
    private let token: String?
    private let tls: NIOSSLContext?
    private let settings: FramedClientSettings
    private let slots: [FramedSlot<Request, Response>]
    private let nextID = Atomic<UInt64>(0)
    private let spread = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)

    /// `token` is sent in the hello (the join token to a worker, a client token to a
    /// coordinator); `security` is the gRPC client's (trust root and identity).
    public init(address: HostAndPort, method: String, security: ClientSecurity, token: String?,
                group: MultiThreadedEventLoopGroup = .singleton, settings: FramedClientSettings = FramedClientSettings()) throws {
        self.address = address
        self.method = method
        self.token = token
        self.settings = settings
        tls = try security.framedContext()
        var loops: [any EventLoop] = []
        for loop in group.makeIterator() { loops.append(loop) }
        let count = max(1, settings.connections ?? loops.count)
        slots = (0 ..< count).map { FramedSlot(loop: loops[$0 % loops.count]) }
    }

    /// Sends `request` and waits for its answer, at most `timeout` when given. Set the
    /// request's own `timeout_ms` so the server stops too.
    public func call(_ request: Request, timeout: Duration?) async throws -> Response {
        guard !closed.load(ordering: .relaxed) else {
            throw RPCError(code: .unavailable, message: "the framed client of \(address) is closed")
        }
        var request = request
        let id = nextID.add(1, ordering: .relaxed).newValue
        request.requestID = id
        request.cancel = false
        let frame: FrameBody
        do {
            frame = try FrameBody(kind: .message, message: request)
        } catch {
            throw RPCError(code: .internalError, message: "cannot encode the request: \(error)")
        }
        guard frame.buffer.readableBytes <= FramingLimits.maxFrameBytes else {
            throw RPCError(code: .resourceExhausted, message: "the request (\(frame.buffer.readableBytes) bytes) exceeds the "
                + "\(QuiverGRPC.maxMessageBytes >> 20) MiB message limit; split the batch")
        }
        let slot = pickSlot()
        slot.calls.add(1, ordering: .relaxed)
        defer { slot.calls.subtract(1, ordering: .relaxed) }
        let deadline = timeout.map { NIODeadline.now() + TimeAmount($0) }
        let ticket = FramedTicket()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // Cancelled before it was sent: the cancellation handler found nothing to cancel.
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                let outgoing = FramedOutgoing(id: id, frame: frame, deadline: deadline, continuation: continuation, ticket: ticket)
                slot.onLoop { self.submit(outgoing, to: slot) }
            }
        } onCancel: {
            ticket.cancel()
            slot.onLoop {
                for connection in slot.withStateOnLoop({ $0.connections }) { connection.cancel(id) }
            }
        }
    }

    /// Forgets the back-off after a failed attempt (the peer answered elsewhere, e.g. a
    /// heartbeat), so that the next call connects at once.
    public func resetBackoff() {
        let initial = TimeAmount(settings.initialBackoff)
        for slot in slots {
            slot.onLoop {
                slot.withStateOnLoop { state in
                    state.failure = nil
                    state.backoff = initial
                }
            }
        }
    }

    /// Closes every connection (their calls fail with UNAVAILABLE); later calls fail at once.
    public func close() {
        guard !closed.exchange(true, ordering: .relaxed) else { return }
        for slot in slots {
            slot.onLoop {
                // Taken out first: each shut-down connection reports back to the slot's state.
                let open = slot.withStateOnLoop { $0.connections }
                for connection in open { connection.shutDown(RPCError(code: .unavailable, message: "the framed client of \(self.address) was closed")) }
            }
        }
    }

    private func pickSlot() -> FramedSlot<Request, Response> {
        guard slots.count > 1 else { return slots[0] }
        if let current = MultiThreadedEventLoopGroup.currentEventLoop, let own = slots.first(where: { $0.loop === current }) {
            guard let margin = settings.spillMargin else { return own }
            let least = slots.min { $0.calls.load(ordering: .relaxed) < $1.calls.load(ordering: .relaxed) }!
            return own.calls.load(ordering: .relaxed) >= least.calls.load(ordering: .relaxed) + margin ? least : own
        }
        return slots[spread.add(1, ordering: .relaxed).oldValue % slots.count]
    }

    /// On the slot's loop: sends on the open connection, or opens one, or fails at once while
    /// the last attempt's back-off lasts. The slot's state is released before the connection is
    /// touched: a connection that fails at once reports back to it.
    private func submit(_ outgoing: FramedOutgoing<Response>, to slot: FramedSlot<Request, Response>) {
        if closed.load(ordering: .relaxed) {
            return outgoing.fail(RPCError(code: .unavailable, message: "the framed client of \(address) is closed"))
        }
        let route = slot.withStateOnLoop { state -> FramedRoute<FramedConnection<Request, Response>> in
            if let current = state.current, current.isUsable { return .send(current) }
            if let failure = state.failure, NIODeadline.now() < failure.until { return .fail(failure.error) }
            let connection = FramedConnection<Request, Response>(
                loop: slot.loop, address: address, method: method, token: token, settings: settings) { [weak slot] connection, everReady, error in
                slot?.withStateOnLoop { $0.closed(connection, everReady: everReady, error: error) }
            }
            state.current = connection
            state.connections.append(connection)
            if state.backoff == .zero { state.backoff = TimeAmount(settings.initialBackoff) }
            return .open(connection)
        }
        switch route {
        case .send(let connection):
            connection.enqueue(outgoing)
        case .open(let connection):
            connection.enqueue(outgoing)
            connection.connect(tls: tls)
        case .fail(let error):
            outgoing.fail(error)
        }
    }
}

/// Where `submit` sends a call.
private enum FramedRoute<Connection> {
    case send(Connection)
    case open(Connection)
    case fail(RPCError)
}

/// The connections of one event loop, and its back-off.
final class FramedSlot<Request: FramedCallRequest, Response: CallStreamResponse & SwiftProtobuf.Message>: Sendable {
    let loop: any EventLoop
    /// Calls made on this slot that have not returned yet (read from any thread).
    let calls = Atomic<Int>(0)
    private let state: NIOLoopBoundBox<FramedSlotState<Request, Response>>

    init(loop: any EventLoop) {
        self.loop = loop
        state = .makeBoxSendingValue(FramedSlotState(), eventLoop: loop)
    }

    /// Runs `body` with the state; the caller is on the loop, and `body` must not reach the
    /// state again (connections report their end through it).
    func withStateOnLoop<Result>(_ body: (inout FramedSlotState<Request, Response>) -> Result) -> Result {
        state.withValue { body(&$0) }
    }

    /// Runs `body` on the loop: at once when already there.
    func onLoop(_ body: @escaping @Sendable () -> Void) {
        if loop.inEventLoop {
            body()
        } else {
            loop.execute(body)
        }
    }
}

struct FramedSlotState<Request: FramedCallRequest, Response: CallStreamResponse & SwiftProtobuf.Message> {
    /// Where new calls go.
    var current: FramedConnection<Request, Response>?
    /// Every connection not yet closed (the current one and those going away).
    var connections: [FramedConnection<Request, Response>] = []
    var failure: (until: NIODeadline, error: RPCError)?
    var backoff = TimeAmount.zero

    mutating func closed(_ connection: FramedConnection<Request, Response>, everReady: Bool, error: RPCError) {
        connections.removeAll { $0 === connection }
        if current === connection { current = nil }
        if everReady {
            failure = nil
            backoff = connection.initialBackoff
        } else {
            failure = (NIODeadline.now() + backoff, error)
            backoff = min(backoff + backoff, connection.maxBackoff)
        }
    }
}

/// Set when the caller's task is cancelled, so that a call not yet sent is never sent.
final class FramedTicket: Sendable {
    private let cancelled = Atomic<Bool>(false)
    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }
    func cancel() { cancelled.store(true, ordering: .relaxed) }
}

struct FramedOutgoing<Response: Sendable>: Sendable {
    let id: UInt64
    let frame: FrameBody
    let deadline: NIODeadline?
    let continuation: CheckedContinuation<Response, any Error>
    let ticket: FramedTicket

    func fail(_ error: any Error) { continuation.resume(throwing: error) }
}

/// One connection to a framed server. Everything here runs on its event loop.
final class FramedConnection<Request: FramedCallRequest, Response: CallStreamResponse & SwiftProtobuf.Message> {
    private enum State { case connecting, ready, draining, closed }

    private struct Pending {
        /// nil once the caller has gone (cancelled, or past its deadline) while the server still
        /// holds the request: its answer is awaited only to keep the in-flight count right.
        var continuation: CheckedContinuation<Response, any Error>?
        var timer: Scheduled<Void>?
        var sent: Bool
    }

    let loop: any EventLoop
    private let address: HostAndPort
    private let method: String
    private let token: String?
    private let settings: FramedClientSettings
    private let onClosed: (FramedConnection, Bool, RPCError) -> Void
    private var state = State.connecting
    private var everReady = false
    private var channel: (any Channel)?
    private var pending: [UInt64: Pending] = [:]
    private var waiting = CircularBuffer<(id: UInt64, frame: FrameBody)>()
    private var inFlight = 0
    private var maxInFlight = FramingLimits.maxInFlight
    private var flushScheduled = false
    private var lastHeard = NIODeadline.now()
    private var pingSent: NIODeadline?
    private var keepalive: RepeatedTask?
    private var helloTimer: Scheduled<Void>?
    /// Why the server said it closes (GOING_AWAY with a reason), for the calls' errors.
    private var closeReason: String?

    var initialBackoff: TimeAmount { TimeAmount(settings.initialBackoff) }
    var maxBackoff: TimeAmount { TimeAmount(settings.maxBackoff) }

    init(loop: any EventLoop, address: HostAndPort, method: String, token: String?, settings: FramedClientSettings,
         onClosed: @escaping (FramedConnection, Bool, RPCError) -> Void) {
        self.loop = loop
        self.address = address
        self.method = method
        self.token = token
        self.settings = settings
        self.onClosed = onClosed
    }

    /// Takes new calls (connecting or open, not going away).
    var isUsable: Bool { state == .connecting || state == .ready }

    func connect(tls: NIOSSLContext?) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        // TLS names: a DNS name is verified (and sent as SNI); an IP literal is verified against
        // the certificate's IP addresses.
        let sniName = address.isIPLiteral ? nil : address.host
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(settings.connectTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
        #if os(Linux)
        bootstrap = bootstrap.channelOption(.tcpOption(NIOBSDSocket.Option(rawValue: 18 /* TCP_USER_TIMEOUT */)),
                                            value: SocketOptionValue(settings.unacknowledgedTimeout.components.seconds * 1000
                                                + settings.unacknowledgedTimeout.components.attoseconds / 1_000_000_000_000_000))
        #endif
        bootstrap = bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: sniName)) }
                    try pipeline.addHandler(ByteToMessageHandler(BoundedFrameDecoder()))
                    try pipeline.addHandler(LengthFieldPrepender(lengthFieldBitLength: .fourBytes))
                    try pipeline.addHandler(FramedClientHandler(bound.value))
                }
            }
        helloTimer = loop.scheduleTask(in: TimeAmount(settings.connectTimeout)) {
            let connection = bound.value
            if connection.state == .connecting {
                connection.shutDown(RPCError(code: .unavailable, message: "no answer to the hello of \(connection.address) within \(connection.settings.connectTimeout)"))
            }
        }
        bootstrap.connect(host: address.host, port: address.port).whenFailure { error in
            bound.value.shutDown(RPCError(code: .unavailable, message: "cannot connect to \(bound.value.address): \(error)"))
        }
    }

    /// The pipeline of a new connection was built.
    func attach(_ channel: any Channel) {
        guard state != .closed else {
            channel.close(promise: nil)
            return
        }
        self.channel = channel
        startKeepalive()
    }

    // MARK: - Calls

    func enqueue(_ outgoing: FramedOutgoing<Response>) {
        if outgoing.ticket.isCancelled { return outgoing.fail(CancellationError()) }
        guard state != .closed else {
            return outgoing.fail(RPCError(code: .unavailable, message: "the connection to \(address) is closed"))
        }
        let id = outgoing.id
        var entry = Pending(continuation: outgoing.continuation, timer: nil, sent: false)
        if let deadline = outgoing.deadline {
            let bound = NIOLoopBound(self, eventLoop: loop)
            entry.timer = loop.scheduleTask(deadline: deadline) { bound.value.expire(id) }
        }
        pending[id] = entry
        waiting.append((id, outgoing.frame))
        sendWaiting()
    }

    func cancel(_ id: UInt64) {
        guard var entry = pending[id], let continuation = entry.continuation else { return }
        entry.timer?.cancel()
        if entry.sent {
            entry.continuation = nil
            pending[id] = entry
            var cancel = Request()
            cancel.requestID = id
            cancel.cancel = true
            if let frame = try? FrameBody(kind: .message, message: cancel) { write(frame) }
        } else {
            pending[id] = nil
        }
        continuation.resume(throwing: CancellationError())
    }

    private func expire(_ id: UInt64) {
        guard var entry = pending[id], let continuation = entry.continuation else { return }
        // The request carries its limit, so the server stops on its own; no cancel is sent.
        if entry.sent {
            entry.continuation = nil
            entry.timer = nil
            pending[id] = entry
        } else {
            pending[id] = nil
        }
        continuation.resume(throwing: RPCError(code: .deadlineExceeded, message: "no answer within the time limit"))
    }

    /// Writes waiting requests while the server has room and the socket takes them.
    private func sendWaiting() {
        guard state == .ready, let channel else { return }
        while inFlight < maxInFlight, channel.isWritable, let next = waiting.popFirst() {
            guard pending[next.id]?.continuation != nil else {
                pending[next.id] = nil
                continue
            }
            pending[next.id]!.sent = true
            inFlight += 1
            write(next.frame)
        }
    }

    /// Writes now and flushes once, after whatever else this turn of the loop writes: searches
    /// that become ready together leave in one system call.
    private func write(_ frame: FrameBody) {
        guard let channel else { return }
        channel.write(frame.buffer, promise: nil)
        guard !flushScheduled else { return }
        flushScheduled = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute {
            let connection = bound.value
            connection.flushScheduled = false
            connection.channel?.flush()
        }
    }

    // MARK: - Events from the pipeline

    func channelActive() {
        var hello = Quiver_V1_FrameHello()
        hello.version = FramingLimits.version
        hello.method = method
        hello.token = token ?? ""
        if let frame = try? FrameBody(kind: .hello, message: hello) { write(frame) }
    }

    func received(_ frame: FrameBody) {
        lastHeard = .now()
        pingSent = nil
        do {
            switch frame.kind {
            case .message?:
                answered(try frame.decode(as: Response.self))
            case .helloAnswer?:
                guard state == .connecting else { throw FramingError.unexpectedFrame("a second hello answer") }
                let answer = try frame.decode(as: Quiver_V1_FrameHelloAnswer.self)
                if answer.hasError && answer.error.code != 0 {
                    return shutDown(answer.error.rpcError)
                }
                if answer.maxInFlight > 0 { maxInFlight = min(Int(answer.maxInFlight), FramingLimits.maxInFlight) }
                state = .ready
                everReady = true
                helloTimer?.cancel()
                sendWaiting()
            case .ping?:
                write(FrameBody(kind: .pong))
            case .pong?:
                break
            case .goingAway?:
                let reason = frame.count > 0 ? try frame.decode(as: Quiver_V1_CallError.self) : nil
                if let reason, !reason.message.isEmpty { closeReason = reason.message }
                state = .draining
                // New calls go to a new connection; these are answered here first.
                for (id, _) in waiting {
                    guard let entry = pending.removeValue(forKey: id) else { continue }
                    entry.timer?.cancel()
                    entry.continuation?.resume(throwing: RPCError(code: .unavailable, message: "\(address) is shutting down"))
                }
                waiting.removeAll()
                if inFlight == 0 { channel?.close(promise: nil) }
            case .hello?, nil:
                throw FramingError.malformedFrame("a frame of kind \(frame.buffer.getInteger(at: frame.buffer.readerIndex, as: UInt8.self).map { "\($0)" } ?? "(none)") from the server")
            }
        } catch {
            closeReason = "\(error)"
            channel?.close(promise: nil)
        }
    }

    private func answered(_ response: Response) {
        guard let entry = pending.removeValue(forKey: response.requestID), entry.sent else { return }
        inFlight -= 1
        entry.timer?.cancel()
        entry.continuation?.resume(returning: response)
        if state == .draining && inFlight == 0 {
            channel?.close(promise: nil)
        } else {
            sendWaiting()
        }
    }

    func writabilityChanged() { sendWaiting() }

    func channelInactive() {
        let reason = closeReason.map { ": \($0)" } ?? ""
        shutDown(RPCError(code: .unavailable, message: "the connection to \(address) closed\(reason)"))
    }

    func failed(_ error: any Error) {
        closeReason = closeReason ?? "\(error)"
        channel?.close(promise: nil)
    }

    /// Fails everything this connection holds with `error` and tells the slot.
    func shutDown(_ error: RPCError) {
        guard state != .closed else { return }
        state = .closed
        keepalive?.cancel()
        keepalive = nil
        helloTimer?.cancel()
        let held = pending.values
        pending = [:]
        waiting.removeAll()
        inFlight = 0
        channel?.close(promise: nil)
        channel = nil
        for entry in held {
            entry.timer?.cancel()
            entry.continuation?.resume(throwing: error)
        }
        onClosed(self, everReady, error)
    }

    private func startKeepalive() {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let interval = TimeAmount(settings.pingInterval)
        keepalive = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in bound.value.keepaliveTick() }
    }

    private func keepaliveTick() {
        let now = NIODeadline.now()
        if let pingSent {
            if now - pingSent >= TimeAmount(settings.pingTimeout) {
                closeReason = "no answer to a keepalive ping within \(settings.pingTimeout)"
                channel?.close(promise: nil)
            }
        } else if now - lastHeard >= TimeAmount(settings.pingInterval) {
            pingSent = now
            write(FrameBody(kind: .ping))
        }
    }
}

/// Hands a client connection's pipeline events to its `FramedConnection`.
final class FramedClientHandler<Request: FramedCallRequest, Response: CallStreamResponse & SwiftProtobuf.Message>: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let connection: FramedConnection<Request, Response>

    init(_ connection: FramedConnection<Request, Response>) {
        self.connection = connection
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connection.attach(context.channel)
    }

    func channelActive(context: ChannelHandlerContext) {
        connection.channelActive()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(FrameBody(frame: unwrapInboundIn(data)))
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.channelInactive()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.failed(error)
    }
}
