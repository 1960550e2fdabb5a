import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import QuiverProtocol
import Synchronization

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

    func run() async throws {
        if let serve {
            let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: serve), transportSecurity: .plaintext)
            let server = GRPCServer(transport: transport, services: [EchoService()])
            let framed = try await FramedServer.start(listen: HostAndPort(host: "127.0.0.1", port: serve + 1), security: .plaintext,
                                                      responder: FramedEcho())
            try await withTaskExecutorPreference(EventLoopExecutor()) { try await server.serve() }
            await framed.shutdown(grace: .zero)
            return
        }
        guard let connect else { throw ValidationError("give --serve PORT or --connect PORT") }
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(host: "127.0.0.1", port: connect), transportSecurity: .plaintext)
        let payload = [UInt8](repeating: 7, count: bytes)
        let (count, levels) = (count, concurrency.values)
        try await withTaskExecutorPreference(EventLoopExecutor()) {
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
                for inFlight in levels {
                    for (name, echo) in [("unary calls", unary), ("stream messages", streamed), ("framed messages", framedEcho)] {
                        for _ in 0 ..< 200 { try await echo() }
                        let start = ContinuousClock.now
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            for _ in 0 ..< inFlight {
                                group.addTask { for _ in 0 ..< count / inFlight { try await echo() } }
                            }
                            try await group.waitForAll()
                        }
                        let elapsed = seconds(since: start)
                        print(String(format: "%-16@ in flight %3d: %8.0f echoes/s  (%.0f µs per echo at this concurrency)",
                                     name as NSString, inFlight, Double(count / inFlight * inFlight) / elapsed,
                                     elapsed / Double(count / inFlight) * 1e6))
                    }
                }
            }
        }
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
