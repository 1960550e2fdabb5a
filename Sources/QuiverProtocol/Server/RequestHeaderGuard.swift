import NIOCore
import NIOHPACK
import NIOHTTP2

/// Sits first in every HTTP/2 stream of a Quiver server and refuses, with a gRPC status, request
/// headers that gRPC Swift would trap on or misread. Today that is a malformed `grpc-timeout`
/// (a negative amount crashes the whole process inside gRPC Swift's decoder). A refused stream
/// is answered trailers-only with INVALID_ARGUMENT and whatever else the client sends on it is
/// dropped; the connection and its other streams go on.
final class RequestHeaderGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var refused = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refused { return }
        if case .headers(let frame) = unwrapInboundIn(data), let problem = Self.problem(in: frame.headers) {
            refused = true
            let trailers: HPACKHeaders = [
                ":status": "200",
                "content-type": "application/grpc",
                "grpc-status": "3",  // INVALID_ARGUMENT
                "grpc-message": Self.percentEncoded(problem),
            ]
            context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: trailers, endStream: true))), promise: nil)
            return
        }
        context.fireChannelRead(data)
    }

    /// What is wrong with a request's headers, for the client; nil when they may pass.
    static func problem(in headers: HPACKHeaders) -> String? {
        for value in headers[GRPCTimeoutHeader.name] {
            if let problem = GRPCTimeoutHeader.problem(value) { return problem }
        }
        return nil
    }

    /// grpc-message is percent-encoded (gRPC's HTTP/2 protocol): printable ASCII except '%' as is.
    static func percentEncoded(_ message: String) -> String {
        var out = ""
        for byte in message.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}
