import GRPCCore
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import SwiftProtobuf
import Synchronization

/// A request type of a framed method: carries its id, cancel flag and time limit.
public protocol FramedCallRequest: CancellableCallRequest, SwiftProtobuf.Message {
    var timeoutMs: UInt32 { get set }
}

extension Quiver_V1_SearchStreamRequest: FramedCallRequest {}
extension Quiver_V1_SearchListsStreamRequest: FramedCallRequest {}

/// What serves one framed method: who may connect, and how each request is answered.
public protocol FramedResponder: Sendable {
    associatedtype Request: FramedCallRequest
    associatedtype Response: CallStreamResponse & SwiftProtobuf.Message

    /// The method the port serves (`FramedMethod`); a hello asking for another is refused.
    var method: String { get }

    /// Admits a connection on its hello, or refuses it with the status a gRPC call would get.
    func admit(_ peer: FramedPeer) throws(RPCError)

    /// Answers `request`, calling `reply` exactly once, from any thread. It runs on the
    /// connection's event-loop thread: work that takes more than a few tens of microseconds
    /// belongs on another thread (the loop serves every request of the connection).
    func answer(_ request: Request, call: FramedCall, reply: FramedReply<Response>)
}

/// One request being answered on a framed connection.
public final class FramedCall: Sendable {
    public let requestID: UInt64
    /// From the request's `timeout_ms`, counted from its arrival.
    public let deadline: ContinuousClock.Instant?
    /// The thread of the connection, as an executor for tasks that should stay on it.
    public let executor: EventLoopExecutor
    private let cancellation = CancelHook()

    init(requestID: UInt64, deadline: ContinuousClock.Instant?, executor: EventLoopExecutor) {
        self.requestID = requestID
        self.deadline = deadline
        self.executor = executor
    }

    /// A cancel frame for it arrived, or its connection closed.
    public var isCancelled: Bool { cancellation.isFired }

    /// Cancelled or past its deadline: work on it should stop.
    public var shouldStop: Bool {
        isCancelled || deadline.map { ContinuousClock.now >= $0 } == true
    }

    /// Runs `action` when the call is cancelled (at once if it already is).
    public func onCancel(_ action: @escaping @Sendable () -> Void) { cancellation.register(action) }

    func cancel() { cancellation.fire() }

    /// Answered: what was registered to run on a cancel is released.
    func finish() { cancellation.finish() }
}

/// Delivers the answer of one framed call (once; later calls are ignored by the connection).
public struct FramedReply<Response: CallStreamResponse & SwiftProtobuf.Message>: Sendable {
    let deliver: @Sendable (Response) -> Void

    public func callAsFunction(_ response: Response) { deliver(response) }
}

/// A TCP (or TLS) listener serving one framed method (see proto/quiver/v1/framing.proto).
public final class FramedServer<Responder: FramedResponder>: Sendable {
    /// The bound address (the real port when asked for 0).
    public let address: HostAndPort
    private let listener: any Channel
    private let connections: FramedConnections

    private init(address: HostAndPort, listener: any Channel, connections: FramedConnections) {
        self.address = address
        self.listener = listener
        self.connections = connections
    }

    /// Binds `listen` and serves `responder` until `shutdown`. `security` is the gRPC port's:
    /// the same certificate, key and client-certificate demand. `log` hears why connections
    /// were closed (garbage, oversize frames, refused hellos).
    public static func start(listen: HostAndPort, security: ServerSecurity, responder: Responder,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             log: (@Sendable (String) -> Void)? = nil) async throws -> FramedServer {
        let tls = try security.framedContext()
        let connections = FramedConnections()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls)) }
                    let decoder = BoundedFrameDecoder(maxFrameBytes: FramingLimits.maxHelloBytes)
                    try pipeline.addHandler(ByteToMessageHandler(decoder))
                    try pipeline.addHandler(LengthFieldPrepender(lengthFieldBitLength: .fourBytes))
                    try pipeline.addHandler(FramedServerHandler(responder: responder, connections: connections, decoder: decoder, log: log))
                }
            }
        let listener = try await bootstrap.bind(host: listen.host, port: listen.port).get()
        let port = listener.localAddress?.port ?? listen.port
        return FramedServer(address: HostAndPort(host: listen.host, port: port), listener: listener, connections: connections)
    }

    /// Stops accepting, tells every connection it is going away, waits (at most `grace`) for
    /// the requests they hold to be answered, then closes whatever is left.
    public func shutdown(grace: Duration = .seconds(30)) async {
        try? await listener.close()
        let open = connections.all
        for channel in open { channel.triggerUserOutboundEvent(FramedGoingAway(), promise: nil) }
        let deadline = NIODeadline.now() + TimeAmount(grace)
        for channel in open {
            let forced = channel.eventLoop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
            try? await channel.closeFuture.get()
            forced.cancel()
        }
    }
}

/// The open connections of a framed server, so that shutdown can reach them.
final class FramedConnections: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) { channels.withLock { $0[ObjectIdentifier(channel)] = channel } }
    func remove(_ channel: any Channel) { channels.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) } }
    var all: [any Channel] { channels.withLock { Array($0.values) } }
}

/// Outbound event: the server is shutting down.
struct FramedGoingAway {}

/// Serves one framed connection. Everything here runs on the connection's event loop.
///
/// Reads are held back (no `read()` passed on) while the connection holds `maxInFlight`
/// requests or its answers are not being taken (`isWritable` false), so a client that floods
/// or never reads is stopped by TCP, not by the server's memory.
final class FramedServerHandler<Responder: FramedResponder>: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase { case awaitingHello, open, goingAway, closed }

    /// A client that has not said hello within this is dropped.
    static var helloTimeout: TimeAmount { .seconds(10) }
    /// A connection with nothing in flight that sends nothing (not even a ping) for this long is closed.
    static var idleTimeout: TimeAmount { .minutes(5) }

    private let responder: Responder
    private let connections: FramedConnections
    private let log: (@Sendable (String) -> Void)?
    private let maxInFlight = FramingLimits.maxInFlight
    private var phase = Phase.awaitingHello
    private var calls: [UInt64: FramedCall] = [:]
    private var context: ChannelHandlerContext?
    private var executor: EventLoopExecutor?
    private var readHeld = false
    /// Inside a burst of reads: answers written now are flushed once, at `channelReadComplete`.
    private var reading = false
    private var unflushed = false
    private var lastHeard = NIODeadline.now()
    private var timer: RepeatedTask?

    /// The connection's decoder, whose limit the accepted hello raises.
    private let decoder: BoundedFrameDecoder

    init(responder: Responder, connections: FramedConnections, decoder: BoundedFrameDecoder, log: (@Sendable (String) -> Void)?) {
        self.responder = responder
        self.connections = connections
        self.decoder = decoder
        self.log = log
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        executor = EventLoopExecutor(context.eventLoop)
        let opened = NIODeadline.now()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            bound.value.checkTimers(opened: opened)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        connections.add(context.channel)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closed
        connections.remove(context.channel)
        timer?.cancel()
        // Nobody is left to take these answers: stop the work.
        let orphans = calls.values
        calls = [:]
        for call in orphans { call.cancel() }
        context.fireChannelInactive()
    }

    private func checkTimers(opened: NIODeadline) {
        let now = NIODeadline.now()
        if phase == .awaitingHello, now - opened > Self.helloTimeout {
            close(because: "no hello within \(Self.helloTimeout.nanoseconds / 1_000_000_000) s")
        } else if phase == .open, calls.isEmpty, now - lastHeard > Self.idleTimeout {
            close(because: "idle for \(Self.idleTimeout.nanoseconds / 60_000_000_000) minutes")
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        lastHeard = .now()
        let frame = FrameBody(frame: unwrapInboundIn(data))
        do {
            switch (phase, frame.kind) {
            case (.awaitingHello, .hello?):
                try hello(frame.decode(as: Quiver_V1_FrameHello.self), context: context)
            case (.open, .message?), (.goingAway, .message?):
                try request(frame.decode(as: Responder.Request.self))
            case (.open, .ping?), (.goingAway, .ping?):
                write(FrameBody(kind: .pong))
            case (_, .pong?):
                break
            case (.closed, _):
                break
            case (_, nil):
                throw FramingError.malformedFrame("unknown frame kind \(frame.buffer.getInteger(at: frame.buffer.readerIndex, as: UInt8.self).map { "\($0)" } ?? "(empty frame)")")
            case (let phase, let kind?):
                throw FramingError.unexpectedFrame("a \(kind) frame while \(phase == .awaitingHello ? "waiting for the hello" : "open")")
            }
        } catch {
            closeOnProtocolError(error)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        flushPending()
    }

    func read(context: ChannelHandlerContext) {
        if calls.count >= maxInFlight || !context.channel.isWritable {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReading()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeOnProtocolError(error)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is FramedGoingAway else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        switch phase {
        case .awaitingHello:
            close(because: nil)
        case .open:
            phase = .goingAway
            write(FrameBody(kind: .goingAway), flush: true)
            if calls.isEmpty { close(because: nil) }
        case .goingAway, .closed:
            break
        }
    }

    // MARK: - The conversation

    private func hello(_ hello: Quiver_V1_FrameHello, context: ChannelHandlerContext) throws {
        var answer = Quiver_V1_FrameHelloAnswer()
        do throws(RPCError) {
            guard hello.version == FramingLimits.version else {
                throw RPCError(code: .unimplemented, message: "framing version \(hello.version) is not spoken here; this server speaks \(FramingLimits.version)")
            }
            guard hello.method == responder.method else {
                throw RPCError(code: .unimplemented, message: "this port serves \(responder.method), not \"\(hello.method.prefix(100))\"")
            }
            let peer = FramedPeer(token: hello.token.isEmpty ? nil : hello.token,
                                  certificate: context.pipeline.syncOperations.framedPeerCertificate(), method: hello.method)
            try responder.admit(peer)
        } catch {
            answer.error = Quiver_V1_CallError(error)
            write(try FrameBody(kind: .helloAnswer, message: answer), flush: true)
            close(because: "hello refused: \(error.message)")
            return
        }
        answer.maxFrameBytes = UInt32(FramingLimits.maxFrameBytes)
        answer.maxInFlight = UInt32(maxInFlight)
        phase = .open
        decoder.maxFrameBytes = FramingLimits.maxFrameBytes
        write(try FrameBody(kind: .helloAnswer, message: answer))
    }

    private func request(_ request: Responder.Request) {
        let id = request.requestID
        if request.cancel {
            calls[id]?.cancel()
            return
        }
        // Refusals go back as that request's answer; the connection goes on.
        if phase == .goingAway {
            return answerRefusal(id, RPCError(code: .unavailable, message: "the server is shutting down"))
        }
        if calls[id] != nil {
            return answerRefusal(id, RPCError(code: .invalidArgument, message: "request id \(id) is already in flight on this connection"))
        }
        if calls.count >= maxInFlight {
            return answerRefusal(id, RPCError(code: .resourceExhausted, message: "more than \(maxInFlight) requests in flight on one connection"))
        }
        let deadline = request.timeoutMs > 0 ? ContinuousClock.now + .milliseconds(Int64(request.timeoutMs)) : nil
        let call = FramedCall(requestID: id, deadline: deadline, executor: executor!)
        calls[id] = call
        let loop = context!.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        let reply = FramedReply<Responder.Response> { response in
            // Encoded on the replying thread (often not the loop's).
            let frame = Self.encode(response, id: id)
            if loop.inEventLoop {
                bound.value.finish(id, frame)
            } else {
                loop.execute { bound.value.finish(id, frame) }
            }
        }
        responder.answer(request, call: call, reply: reply)
    }

    private static func encode(_ response: Responder.Response, id: UInt64) -> FrameBody {
        var response = response
        response.requestID = id
        do {
            let frame = try FrameBody(kind: .message, message: response)
            if frame.buffer.readableBytes <= FramingLimits.maxFrameBytes { return frame }
            let failure = RPCError(code: .resourceExhausted, message: "the answer (\(frame.buffer.readableBytes) bytes) exceeds the "
                + "\(QuiverGRPC.maxMessageBytes >> 20) MiB message limit; split the batch")
            return try FrameBody(kind: .message, message: Responder.Response(failing: id, with: failure))
        } catch {
            // A message of only an id and a short error always encodes.
            return try! FrameBody(kind: .message, message: Responder.Response(failing: id, with: RPCError(code: .internalError, message: "cannot encode the answer: \(error)")))
        }
    }

    private func finish(_ id: UInt64, _ frame: FrameBody) {
        guard phase != .closed, let call = calls.removeValue(forKey: id) else { return }
        call.finish()
        write(frame)
        if phase == .goingAway && calls.isEmpty {
            close(because: nil)
            return
        }
        resumeReading()
    }

    private func answerRefusal(_ id: UInt64, _ error: RPCError) {
        // Cannot fail: an id and a short message.
        write(try! FrameBody(kind: .message, message: Responder.Response(failing: id, with: error)))
    }

    /// Writes `frame`; answers are flushed once per turn of the loop (at the end of a burst
    /// of reads, or after the other work this turn holds), so that the answers of searches
    /// that finish together leave in one system call.
    private func write(_ frame: FrameBody, flush: Bool = false) {
        guard let context, phase != .closed else { return }
        context.write(wrapOutboundOut(frame.buffer), promise: nil)
        if flush {
            unflushed = false
            context.flush()
        } else if !unflushed {
            unflushed = true
            if !reading {
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.eventLoop.execute { bound.value.flushPending() }
            }
        }
    }

    private func flushPending() {
        guard unflushed, let context else { return }
        unflushed = false
        context.flush()
    }

    private func resumeReading() {
        guard readHeld, let context, calls.count < maxInFlight, context.channel.isWritable else { return }
        readHeld = false
        context.read()
    }

    /// A malformed, oversize or out-of-place frame closes this connection (and only it).
    private func closeOnProtocolError(_ error: any Error) {
        guard phase != .closed else { return }
        if phase != .awaitingHello {
            var reason = Quiver_V1_CallError()
            reason.code = UInt32(RPCError.Code.invalidArgument.rawValue)
            reason.message = "\(error)"
            if let frame = try? FrameBody(kind: .goingAway, message: reason) { write(frame, flush: true) }
        }
        close(because: "\(error)")
    }

    private func close(because reason: String?) {
        guard let context, phase != .closed else { return }
        if let reason, let log { log("closing framed connection from \(context.remoteAddress.map { "\($0)" } ?? "?"): \(reason)") }
        // Answers written this turn leave before the connection closes.
        flushPending()
        phase = .closed
        context.close(promise: nil)
    }
}
