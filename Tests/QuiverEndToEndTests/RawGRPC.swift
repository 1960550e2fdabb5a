import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import QuiverProtocol

/// One gRPC call written by hand over a fresh HTTP/2 connection, so tests can send what no
/// well-behaved client library would (a malformed `grpc-timeout`, say) and see what comes back.
enum RawGRPC {
    struct Answer {
        /// Response headers and trailers, merged.
        var headers: [String: String]
        var status: Int? { headers["grpc-status"].flatMap { Int($0) } }
        var message: String { headers["grpc-message"]?.removingPercentEncoding ?? headers["grpc-message"] ?? "" }
    }

    /// Sends `message` (serialized protobuf) to `path` (e.g. "/quiver.v1.Coordinator/ListCollections")
    /// with `extra` headers, and collects the answer's headers until the stream ends.
    static func call(_ address: HostAndPort, path: String, extra: [(String, String)], message: [UInt8] = []) async throws -> Answer {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureAsyncHTTP2Pipeline(mode: .client) { stream in
                        stream.eventLoop.makeSucceededVoidFuture()
                    }
                }
            }
        defer { _ = channel }
        let stream = try await channel.openStream { streamChannel in
            streamChannel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>(wrappingChannelSynchronously: streamChannel)
            }
        }
        var headers: HPACKHeaders = [
            ":method": "POST", ":scheme": "http", ":path": path, ":authority": address.description,
            "content-type": "application/grpc", "te": "trailers",
        ]
        for (name, value) in extra { headers.add(name: name, value: value) }
        var answer = Answer(headers: [:])
        try await stream.executeThenClose { inbound, outbound in
            try await outbound.write(.headers(.init(headers: headers, endStream: false)))
            var body = ByteBuffer()
            body.writeInteger(UInt8(0))
            body.writeInteger(UInt32(message.count))
            body.writeBytes(message)
            try await outbound.write(.data(.init(data: .byteBuffer(body), endStream: true)))
            for try await frame in inbound {
                if case .headers(let received) = frame {
                    for (name, value, _) in received.headers { answer.headers[name] = value }
                    if received.endStream { break }
                }
            }
        }
        return answer
    }
}
