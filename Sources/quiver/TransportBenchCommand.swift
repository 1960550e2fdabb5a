import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import QuiverProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `quiver bench-transport`: what a hop itself costs between two processes, without any search:
/// a 1.6 kB message (one 384-float query) echoed as gRPC unary calls, as messages on one gRPC
/// bidirectional stream, and as frames of the framed search transport (framing.proto) on one
/// TCP connection, the three ways a coordinator can reach a worker. Run `--serve PORT` in one
/// process (gRPC on PORT, framed on PORT+1) and `--connect PORT` in another.
struct TransportBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-transport",
        abstract: "Measure echo rates between two processes: gRPC unary calls, gRPC stream messages and framed messages.")

    @Option(help: "Serve the echo service on 127.0.0.1:PORT until interrupted.")
    var serve: Int?
    @Option(help: "Measure against an echo server on 127.0.0.1:PORT.")
    var connect: Int?
    @Option(help: "Comma-separated numbers of calls in flight.")
    var concurrency: IntegerList = IntegerList(argument: "1,16")!
    @Option(help: "Echoes per measurement.")
    var count = 4000
    @Option(help: "Message size in bytes.")
    var bytes = 1536
    @Option(help: "Comma-separated ways to measure, in this order: raw (blocking TCP, the floor), unary, stream, framed.")
    var kinds = "raw,unary,stream,framed"

    static let knownKinds = ["raw", "unary", "stream", "framed"]

    func run() async throws {
        if let serve {
            let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: serve), transportSecurity: .plaintext)
            let server = GRPCServer(transport: transport, services: [EchoService()])
            let framed = try await FramedServer.start(listen: HostAndPort(host: "127.0.0.1", port: serve + 1), security: .plaintext,
                                                      responder: FramedEcho())
            let raw = try RawEchoServer(port: serve + 2)
            defer { raw.stop() }
            try await withTaskExecutorPreference(EventLoopExecutor()) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await server.serve() }
                    // Said once the gRPC port takes calls too, for whoever started this process.
                    if try await server.listeningAddress != nil { emit("echo servers listening on 127.0.0.1:\(serve)") }
                    try await group.waitForAll()
                }
            }
            await framed.shutdown(grace: .zero)
            return
        }
        guard let connect else { throw ValidationError("give --serve PORT or --connect PORT") }
        let kinds = kinds.split(separator: ",").map { String($0) }
        if let unknown = kinds.first(where: { !Self.knownKinds.contains($0) }) {
            throw ValidationError("--kinds: unknown kind \"\(unknown)\"; expected a comma-separated list of \(Self.knownKinds.joined(separator: ", "))")
        }
        for echo in try await Self.measure(port: connect, kinds: kinds, concurrency: concurrency.values, count: count, bytes: bytes) {
            print(String(format: "%-16@ in flight %3d: %8.0f echoes/s  (%.0f µs per echo at this concurrency)",
                         echo.name as NSString, echo.inFlight, echo.perSecond, echo.microseconds))
        }
    }

    /// One measured way at one concurrency.
    struct Echoes {
        let kind: String
        let name: String
        let inFlight: Int
        let perSecond: Double
        /// Wall time per echo of one caller: the round trip at this concurrency.
        let microseconds: Double
    }

    /// Echoes `count` messages of `bytes` each way against `bench-transport --serve port`, for
    /// each kind in turn at each concurrency.
    static func measure(port connect: Int, kinds: [String], concurrency levels: [Int], count: Int, bytes: Int) async throws -> [Echoes] {
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(host: "127.0.0.1", port: connect), transportSecurity: .plaintext)
        let payload = [UInt8](repeating: 7, count: bytes)
        return try await withTaskExecutorPreference(EventLoopExecutor()) {
            try await withGRPCClient(transport: transport) { client in
                let unary: @Sendable () async throws -> Void = {
                    _ = try await client.unary(request: ClientRequest(message: payload), descriptor: EchoService.unary,
                                               serializer: RawBytes(), deserializer: RawBytes(), options: .defaults) { try $0.message }
                }
                let stream = CallStream<[UInt8], [UInt8]>(open: { requests, receive in
                    try await client.bidirectionalStreaming(
                        request: StreamingClientRequest { writer in for await message in requests { try await writer.write(message) } },
                        descriptor: EchoService.stream, serializer: RawBytes(), deserializer: RawBytes(), options: .defaults
                    ) { response in
                        for try await message in response.messages { receive(message) }
                    }
                }, setID: { message, id in withUnsafeBytes(of: id.littleEndian) { message.replaceSubrange(0 ..< 8, with: $0) } },
                   responseID: { message in message.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } })
                defer { stream.close() }
                let streamed: @Sendable () async throws -> Void = { _ = try await stream.call(payload, timeout: nil) }
                var settings = FramedClientSettings()
                settings.connections = 1
                let frames = try FramedCallClient<Quiver_V1_SearchListsStreamRequest, Quiver_V1_SearchListsStreamResponse>(
                    address: HostAndPort(host: "127.0.0.1", port: connect + 1), method: FramedMethod.searchLists, security: .plaintext,
                    token: nil, settings: settings)
                defer { frames.close() }
                var request = Quiver_V1_SearchListsStreamRequest()
                request.search.queries.data = Data(payload)
                let framedRequest = request
                let framedEcho: @Sendable () async throws -> Void = { _ = try await frames.call(framedRequest, timeout: nil) }
                let names = ["raw": "raw TCP", "unary": "unary calls", "stream": "stream messages", "framed": "framed messages"]
                var results: [Echoes] = []
                for inFlight in levels {
                    for kind in kinds {
                        let perCaller = count / inFlight
                        let elapsed: Double
                        if kind == "raw" {
                            elapsed = try await RawEchoServer.echo(port: connect + 2, bytes: bytes, callers: inFlight, each: perCaller)
                        } else {
                            let echo = ["unary": unary, "stream": streamed, "framed": framedEcho][kind]!
                            for _ in 0 ..< 200 { try await echo() }
                            let start = ContinuousClock.now
                            try await withThrowingTaskGroup(of: Void.self) { group in
                                for _ in 0 ..< inFlight {
                                    group.addTask { for _ in 0 ..< perCaller { try await echo() } }
                                }
                                try await group.waitForAll()
                            }
                            elapsed = seconds(since: start)
                        }
                        results.append(Echoes(kind: kind, name: names[kind]!, inFlight: inFlight,
                                              perSecond: Double(perCaller * inFlight) / elapsed,
                                              microseconds: elapsed / Double(perCaller) * 1e6))
                    }
                }
                return results
            }
        }
    }
}

/// The floor under any hop: a TCP echo with nothing on top, each side sleeping in a blocking
/// read on a thread of its own (as `bench/tools/loopback-rtt.c` does between two processes).
final class RawEchoServer: Sendable {
    private let listener: Int32
    private let stopped = Atomic<Bool>(false)

    init(port: Int) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var reuse: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: port)
        let listening = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        } && listen(listener, 64) == 0
        guard listening else {
            let reason = String(cString: strerror(errno))
            close(listener)
            throw ValidationError("cannot listen on 127.0.0.1:\(port) for the raw echo: \(reason)")
        }
        self.listener = listener
        Thread { [self] in
            // Closed here, not in `stop()`: the descriptor is not reused while accept may use it.
            defer { close(listener) }
            while !stopped.load(ordering: .relaxed) {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else {
                    if errno == EINTR { continue }
                    return
                }
                Self.noDelay(connection)
                Thread {
                    var buffer = [UInt8](repeating: 0, count: 64 << 10)
                    while true {
                        let count = buffer.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
                        guard count > 0 else { break }
                        guard Self.sendAll(connection, buffer, count) else { break }
                    }
                    close(connection)
                }.start()
            }
        }.start()
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    /// `callers` threads, each on a connection of its own, echo `each` messages of `bytes`
    /// (after 200 unmeasured); the seconds it took.
    static func echo(port: Int, bytes: Int, callers: Int, each: Int) async throws -> Double {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Double, Error>) in
            Thread {
                do {
                    var connections: [Int32] = []
                    defer { for connection in connections { close(connection) } }
                    for _ in 0 ..< callers { connections.append(try connect(port: port)) }
                    let ready = DispatchGroup(), done = DispatchGroup()
                    let failed = Atomic<Bool>(false)
                    let start = Mutex<ContinuousClock.Instant>(.now)
                    let go = DispatchSemaphore(value: 0)
                    for connection in connections {
                        ready.enter()
                        done.enter()
                        Thread {
                            defer { done.leave() }
                            let message = [UInt8](repeating: 7, count: bytes)
                            var answer = [UInt8](repeating: 0, count: bytes)
                            func round() -> Bool {
                                guard sendAll(connection, message, bytes) else { return false }
                                var got = 0
                                while got < bytes {
                                    let count = answer.withUnsafeMutableBytes { read(connection, $0.baseAddress! + got, bytes - got) }
                                    guard count > 0 else { return false }
                                    got += count
                                }
                                return true
                            }
                            var ok = (0 ..< 200).allSatisfy { _ in round() }
                            ready.leave()
                            go.wait()
                            for _ in 0 ..< each where ok { ok = round() }
                            if !ok { failed.store(true, ordering: .relaxed) }
                        }.start()
                    }
                    ready.wait()
                    start.withLock { $0 = .now }
                    for _ in connections { go.signal() }
                    done.wait()
                    let elapsed = start.withLock { $0 }.duration(to: .now)
                    guard !failed.load(ordering: .relaxed) else { throw ValidationError("the raw echo on 127.0.0.1:\(port) closed") }
                    continuation.resume(returning: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
                } catch {
                    continuation.resume(throwing: error)
                }
            }.start()
        }
    }

    private static func connect(port: Int) throws -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw ValidationError("cannot reach the raw echo on 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        noDelay(descriptor)
        return descriptor
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private static func noDelay(_ descriptor: Int32) {
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    private static func sendAll(_ descriptor: Int32, _ bytes: [UInt8], _ count: Int) -> Bool {
        var sent = 0
        while sent < count {
            let written = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { return false }
            sent += written
        }
        return true
    }
}

/// Messages as raw bytes.
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ bytes: Bytes) throws -> [UInt8] { bytes.withUnsafeBytes { Array($0) } }
}

/// Echoes every message it receives, on a unary and a bidirectional-streaming method.
struct EchoService: RegistrableRPCService {
    static let unary = MethodDescriptor(fullyQualifiedService: "quiver.bench.Echo", method: "Unary")
    static let stream = MethodDescriptor(fullyQualifiedService: "quiver.bench.Echo", method: "Stream")

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        for method in [Self.unary, Self.stream] {
            router.registerHandler(forMethod: method, deserializer: RawBytes(), serializer: RawBytes()) { request, _ in
                StreamingServerResponse { writer in
                    for try await message in request.messages { try await writer.write(message) }
                    return [:]
                }
            }
        }
    }
}

/// Echoes a framed request's query bytes back, on the event loop (as a worker answers a small search).
struct FramedEcho: FramedResponder {
    var method: String { FramedMethod.searchLists }

    func admit(_ peer: FramedPeer) throws(RPCError) {}

    func answer(_ request: Quiver_V1_SearchListsStreamRequest, call: FramedCall, reply: FramedReply<Quiver_V1_SearchListsStreamResponse>) {
        var response = Quiver_V1_SearchListsStreamResponse()
        response.result.exactScores = request.search.queries.data
        reply(response)
    }
}
