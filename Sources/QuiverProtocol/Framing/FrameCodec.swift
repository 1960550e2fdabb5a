import GRPCCore
import NIOCore
import NIOExtras
import SwiftProtobuf

/// The framed search transport's wire format (proto/quiver/v1/framing.proto): a 4-byte
/// big-endian length, then one kind byte and a protobuf body.
public enum FrameKind: UInt8, Sendable {
    case hello = 1
    case helloAnswer = 2
    case message = 3
    case ping = 4
    case pong = 5
    case goingAway = 6
}

/// Limits every framed connection shares with the gRPC ports.
public enum FramingLimits {
    /// The framing protocol version this build speaks.
    public static let version: UInt32 = 1
    /// Largest frame (kind byte + body): the shared message limit, plus the kind byte.
    public static let maxFrameBytes = QuiverGRPC.maxMessageBytes + 1
    /// Largest frame a server reads before a hello has admitted the connection: a peer that
    /// has not shown its credentials cannot make it buffer more than this.
    public static let maxHelloBytes = 64 << 10
    /// Requests one connection holds at once, as a gRPC search stream does.
    public static let maxInFlight = CallStreamLimits.maxInFlightPerStream
}

/// Why a frame could not be read or written.
public enum FramingError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A length prefix above the limit: the body is never read.
    case frameTooLarge(length: UInt64, limit: Int)
    /// A frame with no kind byte, an unknown kind, or a body that does not decode.
    case malformedFrame(String)
    /// A frame that makes no sense at this point of the conversation (a message before the hello).
    case unexpectedFrame(String)

    public var description: String {
        switch self {
        case .frameTooLarge(let length, let limit) where limit < 1 << 20:
            "a frame of \(length) bytes exceeds the \(limit)-byte limit of a connection not yet admitted by its hello"
        case .frameTooLarge(let length, let limit):
            "a frame of \(length) bytes exceeds the \(limit >> 20) MiB message limit (\(limit) bytes)"
        case .malformedFrame(let what): "malformed frame: \(what)"
        case .unexpectedFrame(let what): "unexpected frame: \(what)"
        }
    }
}

/// `LengthFieldBasedFrameDecoder` (4-byte big-endian lengths) that refuses a length above
/// `maxFrameBytes` as soon as the prefix arrives, before buffering the body it announces: the
/// plain decoder would wait for up to 2 GiB of a hostile peer's bytes.
public final class BoundedFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    private let frames = LengthFieldBasedFrameDecoder(lengthFieldBitLength: .thirtyTwoBits, lengthFieldEndianness: .big)
    /// The server raises it from `maxHelloBytes` once the hello is accepted.
    var maxFrameBytes: Int
    /// The inner decoder has consumed the current frame's length prefix (already checked).
    private var lengthRead = false

    public init(maxFrameBytes: Int = FramingLimits.maxFrameBytes) {
        self.maxFrameBytes = maxFrameBytes
    }

    public func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if !lengthRead {
            guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else { return .needMoreData }
            guard length <= maxFrameBytes else { throw FramingError.frameTooLarge(length: UInt64(length), limit: maxFrameBytes) }
        }
        let state = try frames.decode(context: context, buffer: &buffer)
        // With four bytes present the inner decoder always reads the prefix; it then either
        // emitted the frame (.continue) or waits for the rest of its body.
        lengthRead = state == .needMoreData
        return state
    }

    public func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A peer that closes mid-frame left a truncated frame; there is nothing to answer.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}

/// The bytes of one frame after its length prefix: the kind byte, then the body. It adapts a
/// `ByteBuffer` to SwiftProtobuf's byte-container protocol, so that messages are encoded
/// straight into the buffer that is written (one byte of headroom for the kind) and decoded
/// straight from the buffer that was read.
public struct FrameBody: SwiftProtobufContiguousBytes, Sendable {
    /// Kind byte at the reader index, body after it.
    public private(set) var buffer: ByteBuffer

    private static let allocator = ByteBufferAllocator()

    /// Wraps a received frame (its kind byte first).
    public init(frame: ByteBuffer) {
        buffer = frame
    }

    /// A frame of `kind` with an empty body.
    public init(kind: FrameKind) {
        buffer = Self.allocator.buffer(capacity: 1)
        buffer.writeInteger(kind.rawValue)
    }

    /// A frame of `kind` carrying `message`.
    public init(kind: FrameKind, message: some SwiftProtobuf.Message) throws {
        self = try message.serializedBytes()
        buffer.setInteger(kind.rawValue, at: buffer.readerIndex)
    }

    public init(repeating byte: UInt8, count: Int) {
        buffer = Self.allocator.buffer(capacity: count + 1)
        buffer.writeInteger(UInt8(0))
        buffer.writeRepeatingByte(byte, count: count)
    }

    public init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
        buffer = Self.allocator.buffer(capacity: sequence.underestimatedCount + 1)
        buffer.writeInteger(UInt8(0))
        buffer.writeBytes(sequence)
    }

    /// The frame's kind; nil for an empty frame or an unknown kind byte.
    public var kind: FrameKind? {
        buffer.getInteger(at: buffer.readerIndex, as: UInt8.self).flatMap(FrameKind.init(rawValue:))
    }

    /// Bytes of the body (after the kind byte).
    public var count: Int { max(0, buffer.readableBytes - 1) }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes { bytes in
            try body(bytes.isEmpty ? bytes : UnsafeRawBufferPointer(rebasing: bytes.dropFirst()))
        }
    }

    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeMutableReadableBytes { bytes in
            try body(bytes.isEmpty ? bytes : UnsafeMutableRawBufferPointer(rebasing: bytes.dropFirst()))
        }
    }

    /// Decodes the body as `Message`; a body that is not one is a malformed frame.
    public func decode<Message: SwiftProtobuf.Message>(as _: Message.Type) throws(FramingError) -> Message {
        do {
            return try Message(serializedBytes: self)
        } catch {
            throw .malformedFrame("a \(kind.map { "\($0)" } ?? "frame") body that is not a \(Message.protoMessageName): \(error)")
        }
    }
}

/// A response type of a call stream that can carry a `CallError` (both search streams' do).
public protocol CallStreamResponse: CallStreamMessage {
    init()
    var error: Quiver_V1_CallError { get set }
}

extension Quiver_V1_SearchStreamResponse: CallStreamResponse {}
extension Quiver_V1_SearchListsStreamResponse: CallStreamResponse {}

extension CallStreamResponse {
    /// The answer to request `id` that fails it with `error`.
    public init(failing id: UInt64, with error: RPCError) {
        self.init()
        requestID = id
        self.error = Quiver_V1_CallError(error)
    }
}

/// The method names a hello may ask for.
public enum FramedMethod {
    public static let searchLists = "quiver.v1.Worker/SearchListsStream"
    public static let search = "quiver.v1.Coordinator/SearchStream"
}
