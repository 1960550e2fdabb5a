import Foundation
import GRPCCore
import NIOCore
import NIOEmbedded
import NIOExtras
import NIOPosix
import SwiftProtobuf
import Synchronization
import Testing

@testable import QuiverProtocol

/// The framed search transport between real sockets on loopback: answers find their callers in
/// any order, cancels and deadlines reach the server, a restarted server is reconnected to, and
/// TLS admits only the certificate and token the gRPC port would.
@Suite struct FramedTransportTests {
    typealias Request = Quiver_V1_SearchListsStreamRequest
    typealias Response = Quiver_V1_SearchListsStreamResponse
    typealias Client = FramedCallClient<Request, Response>

    static func request(k: UInt32, timeoutMs: UInt32 = 0) -> Request {
        var request = Request()
        request.search.k = k
        request.timeoutMs = timeoutMs
        return request
    }

    static func start(_ responder: TestResponder, security: ServerSecurity = .plaintext,
                      port: Int = 0) async throws -> FramedServer<TestResponder> {
        try await FramedServer.start(listen: HostAndPort(host: "127.0.0.1", port: port), security: security, responder: responder)
    }

    static func client(_ server: FramedServer<TestResponder>, security: ClientSecurity = .plaintext, token: String? = nil,
                       host: String = "127.0.0.1") throws -> Client {
        var settings = FramedClientSettings()
        settings.initialBackoff = .milliseconds(50)
        // The full suite runs debug builds (TLS at -O0) in parallel on shared cores: a handshake
        // and hello there took over the default 3 s twice. These tests are about admission and
        // ordering, not connect latency.
        settings.connectTimeout = .seconds(30)
        // One connection, so that a test's later calls find it open (a second one would still be
        // connecting when a short time limit passes).
        settings.connections = 1
        return try Client(address: HostAndPort(host: host, port: server.address.port), method: FramedMethod.searchLists,
                          security: security, token: token, settings: settings)
    }

    @Test func answersReachTheirCallersInAnyOrder() async throws {
        let responder = TestResponder(holdUntil: 8)
        let server = try await Self.start(responder)
        let client = try Self.client(server)
        let answers = try await withThrowingTaskGroup(of: (UInt32, UInt32).self) { group in
            for k in 1 ... 8 as ClosedRange<UInt32> {
                group.addTask { (k, try await client.call(Self.request(k: k), timeout: .seconds(10)).result.results.k) }
            }
            var answers: [(UInt32, UInt32)] = []
            for try await answer in group { answers.append(answer) }
            return answers
        }
        #expect(answers.count == 8)
        #expect(answers.allSatisfy { $0.0 == $0.1 })
        // The held answers went back in reverse order of arrival.
        #expect(responder.answeredOrder.withLock { $0 } == responder.arrivalOrder.withLock { $0 }.reversed())
        client.close()
        await server.shutdown()
    }

    /// Tasks that share one event loop: with a spill margin their concurrent calls travel on a
    /// connection per loop (the server reads them on as many threads); without, on their loop's.
    @Test(arguments: [2, nil] as [Int?])
    func concurrentCallsFromOneLoopSpillToTheOtherConnections(margin: Int?) async throws {
        let responder = TestResponder(holdUntil: 8)
        let server = try await Self.start(responder)
        var settings = FramedClientSettings()
        settings.connectTimeout = .seconds(30)
        settings.connections = 2
        settings.spillMargin = margin
        let client = try Client(address: HostAndPort(host: "127.0.0.1", port: server.address.port), method: FramedMethod.searchLists,
                                security: .plaintext, token: nil, settings: settings)
        let loop = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())[0]
        let answers = try await withTaskExecutorPreference(EventLoopExecutor(loop)) {
            try await withThrowingTaskGroup(of: UInt32.self) { group in
                for k in 1 ... 8 as ClosedRange<UInt32> {
                    group.addTask { try await client.call(Self.request(k: k), timeout: .seconds(30)).result.results.k }
                }
                return try await group.reduce(0, +)
            }
        }
        #expect(answers == 36)
        // All 8 were held until the last arrived, so each connection that carried one was opened.
        #expect(responder.admitted.load(ordering: .relaxed) == (margin == nil ? 1 : 2))
        client.close()
        await server.shutdown()
    }

    /// A task that prefers a `LoopFollowingExecutor` goes on on the loop that resumed it, and
    /// on its home loop when resumed from any other thread.
    @Test func aLoopFollowingTaskStaysOnTheLoopThatWokeIt() async throws {
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        let executor = LoopFollowingExecutor()
        // Resumed a while after it suspends: a continuation resumed before its task has
        // suspended lets the task go on where it was, enqueueing nothing (the suite's load once
        // delayed the suspension past an immediate resume).
        let later = TimeAmount.milliseconds(100)
        await withTaskExecutorPreference(executor) {
            for loop in loops + loops.reversed() {
                await withCheckedContinuation { (resumed: CheckedContinuation<Void, Never>) in
                    loop.scheduleTask(in: later) { resumed.resume() }
                }
                #expect(MultiThreadedEventLoopGroup.currentEventLoop === loop)
            }
            await withCheckedContinuation { (resumed: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread {
                    Thread.sleep(forTimeInterval: 0.1)
                    resumed.resume()
                }
            }
            #expect(MultiThreadedEventLoopGroup.currentEventLoop === executor.home)
        }
    }

    /// What a responder registers to run on a cancel is released once the call is answered: it
    /// may hold, through the responder's own state, the call itself (a cycle the coordinator's
    /// search port once leaked about 20 kB a search through).
    @Test func anAnsweredCallReleasesWhatItsCancelWouldRun() async throws {
        let responder = CancelRegisteringResponder()
        let server = try await FramedServer.start(listen: HostAndPort(host: "127.0.0.1", port: 0), security: .plaintext, responder: responder)
        var settings = FramedClientSettings()
        settings.connectTimeout = .seconds(30)
        settings.connections = 1
        let client = try FramedCallClient<Request, Response>(address: HostAndPort(host: "127.0.0.1", port: server.address.port),
                                                             method: FramedMethod.searchLists, security: .plaintext, token: nil,
                                                             settings: settings)
        for k in 1 ... 10 as ClosedRange<UInt32> {
            #expect(try await client.call(Self.request(k: k), timeout: .seconds(30)).result.results.k == k)
        }
        // Each call was finished on the server's loop before its answer was written.
        let tracked = responder.tracked.withLock { $0 }
        #expect(tracked.count == 10)
        #expect(tracked.allSatisfy { $0.object == nil })
        client.close()
        await server.shutdown()
    }

    @Test func aFinishedCancelHookKeepsAndRunsNothing() {
        let hook = CancelHook()
        let ran = Atomic<Int>(0)
        var weak = WeakTracker()
        do {
            let tracker = Tracker()
            weak.object = tracker
            hook.register { _ = tracker; ran.add(1, ordering: .relaxed) }
        }
        #expect(weak.object != nil)
        hook.finish()
        #expect(weak.object == nil)
        hook.fire()
        hook.register { ran.add(1, ordering: .relaxed) }
        #expect(ran.load(ordering: .relaxed) == 0 && !hook.isFired)

        // Unfinished, it runs what it holds once, and later registrations at once.
        let live = CancelHook()
        live.register { ran.add(1, ordering: .relaxed) }
        live.fire()
        live.fire()
        live.register { ran.add(10, ordering: .relaxed) }
        #expect(ran.load(ordering: .relaxed) == 11)
    }

    @Test func manyConcurrentCallsOnOneConnection() async throws {
        let server = try await Self.start(TestResponder())
        let client = try Self.client(server)
        let sum = try await withThrowingTaskGroup(of: UInt32.self) { group in
            for k in 1 ... 2000 as ClosedRange<UInt32> {
                group.addTask { try await client.call(Self.request(k: k), timeout: .seconds(30)).result.results.k }
            }
            return try await group.reduce(0, +)
        }
        #expect(sum == 2000 * 2001 / 2)
        client.close()
        await server.shutdown()
    }

    @Test func aCancelledCallCancelsTheServersWork() async throws {
        let responder = TestResponder(answerOnlyWhenStopped: true)
        let server = try await Self.start(responder)
        let client = try Self.client(server)
        let call = Task { try await client.call(Self.request(k: 1), timeout: nil) }
        try await responder.waitForArrivals(1)
        call.cancel()
        await #expect(throws: CancellationError.self) { _ = try await call.value }
        try await responder.waitUntil { $0.cancelledSeen.load(ordering: .relaxed) == 1 }
        // The connection is fine afterwards.
        #expect(try await client.call(Self.request(k: 7, timeoutMs: 1), timeout: .seconds(10)).error.code == UInt32(RPCError.Code.cancelled.rawValue))
        client.close()
        await server.shutdown()
    }

    @Test func aCallPastItsDeadlineFailsAndTheServerStopsToo() async throws {
        let responder = TestResponder(answerOnlyWhenStopped: true)
        let server = try await Self.start(responder)
        let client = try Self.client(server)
        // Connected first, so that the limit is spent on the server and not on the handshake
        // (a request whose limit passes before it is sent is never sent).
        #expect(try await client.call(Self.request(k: 2, timeoutMs: 1), timeout: .seconds(10)).error.code == UInt32(RPCError.Code.cancelled.rawValue))
        try await responder.waitUntil { $0.stoppedByDeadline.load(ordering: .relaxed) == 1 }
        do {
            _ = try await client.call(Self.request(k: 1, timeoutMs: 100), timeout: .milliseconds(100))
            Issue.record("a call that is never answered returned")
        } catch {
            #expect((error as? RPCError)?.code == .deadlineExceeded)
        }
        // The server saw the request's own limit pass and stopped.
        try await responder.waitUntil { $0.stoppedByDeadline.load(ordering: .relaxed) == 2 }
        client.close()
        await server.shutdown()
    }

    @Test func aRestartedServerIsReconnectedToAndADeadOneFailsCallsAsUnavailable() async throws {
        let first = try await Self.start(TestResponder())
        let port = first.address.port
        let client = try Self.client(first)
        #expect(try await client.call(Self.request(k: 3), timeout: .seconds(10)).result.results.k == 3)
        await first.shutdown()
        // Down: the call fails at once (connection refused), and again during the back-off.
        for _ in 0 ..< 2 {
            do {
                _ = try await client.call(Self.request(k: 4), timeout: .seconds(10))
                Issue.record("a call to a stopped server returned")
            } catch {
                #expect((error as? RPCError)?.code == .unavailable)
            }
        }
        let second = try await Self.start(TestResponder(), port: port)
        client.resetBackoff()
        #expect(try await client.call(Self.request(k: 5), timeout: .seconds(10)).result.results.k == 5)
        client.close()
        await second.shutdown()
    }

    @Test func aServerShuttingDownAnswersWhatItHoldsFirst() async throws {
        let responder = TestResponder(delay: .milliseconds(300))
        let server = try await Self.start(responder)
        let client = try Self.client(server)
        let call = Task { try await client.call(Self.request(k: 9), timeout: .seconds(10)) }
        try await responder.waitForArrivals(1)
        await server.shutdown()
        #expect(try await call.value.result.results.k == 9)
        client.close()
    }

    @Test func aRequestAboveTheMessageLimitIsRefusedBeforeItIsSent() async throws {
        let server = try await Self.start(TestResponder())
        let client = try Self.client(server)
        var huge = Self.request(k: 1)
        huge.search.probeListIds = Data(count: QuiverGRPC.maxMessageBytes + 16)
        do {
            _ = try await client.call(huge, timeout: .seconds(10))
            Issue.record("an oversize request was sent")
        } catch {
            #expect((error as? RPCError)?.code == .resourceExhausted)
            #expect("\(error)".contains("64 MiB"))
        }
        #expect(try await client.call(Self.request(k: 2), timeout: .seconds(10)).result.results.k == 2)
        client.close()
        await server.shutdown()
    }
}

// MARK: - Credentials

extension FramedTransportTests {
    /// The worker's rules: mutual TLS naming the coordinator role, and the join token.
    static func workerCredentials(_ join: String?) throws -> ServerCredentials {
        ServerCredentials(joinToken: try join.map { try JoinToken($0) }, requireCoordinatorCertificate: true)
    }

    @Test func mutualTLSAdmitsOnlyTheCoordinatorsCertificateAndTheJoinToken() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-framed-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificates = try DevelopmentCertificates.write(to: folder.path)
        let stranger = try DevelopmentCertificates.write(to: folder.path + "/stranger")
        let join = "join-token-0123456789"
        let responder = TestResponder(credentials: try Self.workerCredentials(join))
        let server = try await Self.start(responder, security: .tls(certificates.node(.worker), requireClientCertificate: true))
        func code(_ security: ClientSecurity, token: String?, host: String = "127.0.0.1") async throws -> RPCError.Code? {
            let client = try Self.client(server, security: security, token: token, host: host)
            defer { client.close() }
            do {
                _ = try await client.call(Self.request(k: 1), timeout: .seconds(10))
                return nil
            } catch {
                return (error as? RPCError)?.code
            }
        }
        let coordinator = certificates.node(.coordinator)
        let worker = certificates.node(.worker)
        #expect(try await code(ClientSecurity(coordinator), token: join) == nil)
        #expect(try await code(ClientSecurity(coordinator), token: join, host: "localhost") == nil)
        #expect(try await code(ClientSecurity(coordinator), token: nil) == .unauthenticated)
        #expect(try await code(ClientSecurity(coordinator), token: "not-the-join-token-at-all") == .permissionDenied)
        // A worker's certificate is signed by the CA but names the wrong role.
        #expect(try await code(.tls(trustRoots: certificates.ca, identity: (worker.certificateChain, worker.privateKey)), token: join) == .permissionDenied)
        // No certificate, or one from another CA: the TLS handshake itself fails.
        #expect(try await code(.tls(trustRoots: certificates.ca, identity: nil), token: join) == .unavailable)
        let foreign = stranger.node(.coordinator)
        #expect(try await code(.tls(trustRoots: certificates.ca, identity: (foreign.certificateChain, foreign.privateKey)), token: join) == .unavailable)
        // A client that does not trust the server's CA, or speaks plaintext to a TLS port.
        #expect(try await code(ClientSecurity(stranger.node(.coordinator)), token: join) == .unavailable)
        #expect(try await code(.plaintext, token: join) == .unavailable)
        #expect(responder.arrivalOrder.withLock { $0.count } == 2)
        await server.shutdown()
    }

    @Test func aHelloForAnotherMethodOrVersionIsRefused() async throws {
        let server = try await Self.start(TestResponder())
        let client = try FramedCallClient<Quiver_V1_SearchStreamRequest, Quiver_V1_SearchStreamResponse>(
            address: server.address, method: FramedMethod.search, security: .plaintext, token: nil)
        await #expect { _ = try await client.call(Quiver_V1_SearchStreamRequest(), timeout: .seconds(10)) } throws: {
            ($0 as? RPCError)?.code == .unimplemented
        }
        client.close()
        await server.shutdown()
    }
}

// MARK: - Hostile bytes, straight into the server's pipeline

extension FramedTransportTests {
    /// A server connection in an embedded channel: bytes in, frames out.
    static func embeddedServer(_ responder: TestResponder = TestResponder()) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let decoder = BoundedFrameDecoder(maxFrameBytes: FramingLimits.maxHelloBytes)
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
        try channel.pipeline.syncOperations.addHandler(LengthFieldPrepender(lengthFieldBitLength: .fourBytes))
        try channel.pipeline.syncOperations.addHandler(FramedServerHandler(responder: responder, connections: FramedConnections(),
                                                                           decoder: decoder, log: nil))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    static func frame(_ kind: FrameKind, _ message: (some SwiftProtobuf.Message)?) throws -> ByteBuffer {
        let body = try message.map { try FrameBody(kind: kind, message: $0) } ?? FrameBody(kind: kind)
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(body.buffer.readableBytes))
        buffer.writeImmutableBuffer(body.buffer)
        return buffer
    }

    static var hello: ByteBuffer {
        var hello = Quiver_V1_FrameHello()
        hello.version = 1
        hello.method = FramedMethod.searchLists
        return try! frame(.hello, hello)
    }

    /// The frames the server wrote, decoded by kind.
    static func written(_ channel: EmbeddedChannel) throws -> [FrameBody] {
        var frames: [FrameBody] = []
        var bytes = ByteBuffer()
        while let chunk = try channel.readOutbound(as: ByteBuffer.self) { bytes.writeImmutableBuffer(chunk) }
        while let length = bytes.readInteger(as: UInt32.self), let body = bytes.readSlice(length: Int(length)) {
            frames.append(FrameBody(frame: body))
        }
        return frames
    }

    @Test func anOversizeLengthClosesTheConnectionBeforeItsBodyArrives() throws {
        let channel = try Self.embeddedServer()
        try channel.writeInbound(Self.hello)
        var oversize = ByteBuffer()
        oversize.writeInteger(UInt32(FramingLimits.maxFrameBytes + 1))
        oversize.writeInteger(UInt8(FrameKind.message.rawValue))
        // The handler takes the decoder's error itself (it must not reach the pipeline's end).
        try channel.writeInbound(oversize)
        #expect(!channel.isActive)
        let frames = try Self.written(channel)
        #expect(frames.last?.kind == .goingAway)
        #expect(try frames.last?.decode(as: Quiver_V1_CallError.self).message.contains("exceeds") == true)
    }

    @Test func beforeTheHelloOnlySmallFramesAreRead() throws {
        // A peer that has not shown its credentials announces 1 MiB: refused at the prefix.
        let early = try Self.embeddedServer()
        var announced = ByteBuffer()
        announced.writeInteger(UInt32(1 << 20))
        announced.writeInteger(UInt8(FrameKind.hello.rawValue))
        try early.writeInbound(announced)
        #expect(!early.isActive)
        // After the hello, in the same burst of bytes, a frame of 1 MiB is read and answered.
        let admitted = try Self.embeddedServer()
        var request = Self.request(k: 3)
        request.requestID = 5
        request.search.probeListIds = Data(count: 1 << 20)
        var burst = Self.hello
        burst.writeImmutableBuffer(try Self.frame(.message, request))
        try admitted.writeInbound(burst)
        #expect(admitted.isActive)
        let frames = try Self.written(admitted)
        #expect(frames.map(\.kind) == [.helloAnswer, .message])
        #expect(try frames.last?.decode(as: Response.self).result.results.k == 3)
    }

    @Test func garbageClosesOnlyThatConnection() throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0 ..< 200 {
            let channel = try Self.embeddedServer()
            if round % 2 == 0 { try channel.writeInbound(Self.hello) }
            var garbage = ByteBuffer()
            let count = Int.random(in: 1 ... 300, using: &generator)
            for _ in 0 ..< count { garbage.writeInteger(UInt8.random(in: 0 ... 255, using: &generator)) }
            // A short length prefix keeps most garbage inside frames the handler must refuse.
            if round % 3 == 0, count >= 4 { garbage.setInteger(UInt32(max(0, min(count - 4, 200))), at: 0) }
            _ = try? channel.writeInbound(garbage)
            _ = try? channel.finish()
        }
        // A well-formed conversation still works.
        let channel = try Self.embeddedServer()
        try channel.writeInbound(Self.hello)
        var request = Self.request(k: 4)
        request.requestID = 11
        try channel.writeInbound(try Self.frame(.message, request))
        let frames = try Self.written(channel)
        #expect(frames.map(\.kind) == [.helloAnswer, .message])
        #expect(try frames[1].decode(as: Response.self).result.results.k == 4)
    }

    @Test func aMessageBeforeTheHelloClosesTheConnection() throws {
        let channel = try Self.embeddedServer()
        try channel.writeInbound(try Self.frame(.message, Self.request(k: 1)))
        #expect(!channel.isActive)
        #expect(try Self.written(channel).isEmpty)
    }

    @Test func requestsBeyondTheInFlightBoundAreRefusedAndReadingPauses() throws {
        let responder = TestResponder(answerOnlyWhenStopped: true)
        let channel = try Self.embeddedServer(responder)
        try channel.writeInbound(Self.hello)
        var burst = ByteBuffer()
        for id in 1 ... UInt64(FramingLimits.maxInFlight + 3) {
            var request = Self.request(k: 1)
            request.requestID = id
            burst.writeImmutableBuffer(try Self.frame(.message, request))
        }
        try channel.writeInbound(burst)
        let frames = try Self.written(channel)
        let refusals = try frames.dropFirst().map { try $0.decode(as: Response.self) }
        #expect(refusals.count == 3)
        #expect(refusals.allSatisfy { $0.error.code == UInt32(RPCError.Code.resourceExhausted.rawValue) })
        #expect(responder.arrivalOrder.withLock { $0.count } == FramingLimits.maxInFlight)
        // A full connection passes no read() on until an answer leaves.
        let reads = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(reads, position: .first)
        channel.read()
        #expect(reads.count == 0)
        // A repeated id is refused as such.
        var again = Self.request(k: 1)
        again.requestID = 1
        try channel.writeInbound(try Self.frame(.message, again))
        #expect(try Self.written(channel).map { try $0.decode(as: Response.self).error.code } == [UInt32(RPCError.Code.invalidArgument.rawValue)])
    }
}

/// Counts the read() calls that reach the head of the pipeline.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var count = 0
    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}

/// Answers `k` with `k`. `holdUntil`: holds answers until that many requests arrived, then
/// answers them in reverse. `answerOnlyWhenStopped`: answers (CANCELLED) only once cancelled or
/// past the request's deadline. `credentials`: the worker's admission rules.
final class TestResponder: FramedResponder, Sendable {
    typealias Request = Quiver_V1_SearchListsStreamRequest
    typealias Response = Quiver_V1_SearchListsStreamResponse

    let method = FramedMethod.searchLists
    let holdUntil: Int
    let answerOnlyWhenStopped: Bool
    let delay: Duration?
    let credentials: ServerCredentials?
    let arrivalOrder = Mutex<[UInt32]>([])
    let answeredOrder = Mutex<[UInt32]>([])
    let held = Mutex<[(UInt32, FramedReply<Response>)]>([])
    let cancelledSeen = Atomic<Int>(0)
    let stoppedByDeadline = Atomic<Int>(0)
    /// Connections admitted.
    let admitted = Atomic<Int>(0)

    init(holdUntil: Int = 0, answerOnlyWhenStopped: Bool = false, delay: Duration? = nil, credentials: ServerCredentials? = nil) {
        self.holdUntil = holdUntil
        self.answerOnlyWhenStopped = answerOnlyWhenStopped
        self.delay = delay
        self.credentials = credentials
    }

    func admit(_ peer: FramedPeer) throws(RPCError) {
        try credentials?.check(.coordinator, peer: peer)
        admitted.add(1, ordering: .relaxed)
    }

    func answer(_ request: Request, call: FramedCall, reply: FramedReply<Response>) {
        let k = request.search.k
        arrivalOrder.withLock { $0.append(k) }
        var response = Response()
        response.result.results.k = k
        if answerOnlyWhenStopped {
            Thread.detachNewThread { [self] in
                while !call.shouldStop { usleep(1000) }
                if call.isCancelled { cancelledSeen.add(1, ordering: .relaxed) } else { stoppedByDeadline.add(1, ordering: .relaxed) }
                reply(Response(failing: call.requestID, with: RPCError(code: .cancelled, message: "stopped")))
            }
            return
        }
        if let delay {
            let response = response
            Thread.detachNewThread {
                Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) * 1e-18)
                reply(response)
            }
            return
        }
        guard holdUntil > 0 else { return reply(response) }
        let ready = held.withLock { held -> [(UInt32, FramedReply<Response>)] in
            held.append((k, reply))
            guard held.count == holdUntil else { return [] }
            defer { held = [] }
            return held.reversed()
        }
        for (k, reply) in ready {
            var answer = Response()
            answer.result.results.k = k
            answeredOrder.withLock { $0.append(k) }
            reply(answer)
        }
    }

    func waitForArrivals(_ count: Int) async throws {
        try await waitUntil { $0.arrivalOrder.withLock { $0.count } >= count }
    }

    func waitUntil(_ condition: (TestResponder) -> Bool) async throws {
        for _ in 0 ..< 1000 where !condition(self) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(condition(self))
    }
}

final class Tracker: Sendable {}

struct WeakTracker: @unchecked Sendable {
    weak var object: Tracker?
}

/// Registers, for each call, a cancel action holding the call and an object whose release it
/// tracks, then answers at once.
final class CancelRegisteringResponder: FramedResponder, Sendable {
    typealias Request = Quiver_V1_SearchListsStreamRequest
    typealias Response = Quiver_V1_SearchListsStreamResponse

    let method = FramedMethod.searchLists
    let tracked = Mutex<[WeakTracker]>([])

    func admit(_ peer: FramedPeer) throws(RPCError) {}

    func answer(_ request: Request, call: FramedCall, reply: FramedReply<Response>) {
        let tracker = Tracker()
        tracked.withLock { $0.append(WeakTracker(object: tracker)) }
        // Holds the call too, as the coordinator's coalescer once did through its member.
        call.onCancel { _ = tracker; _ = call }
        var response = Response()
        response.result.results.k = request.search.k
        reply(response)
    }
}
