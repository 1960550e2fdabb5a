import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore

/// The one way every Quiver server and client builds its HTTP/2 transport, so that limits,
/// keepalive and the request-header guard are the same on every hop.
public enum QuiverTransport {
    /// Streams one connection may hold open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS,
    /// gRPC's usual 100): plenty for a client's search stream and parallel loads, and a bound on
    /// what one connection can make the server buffer.
    public static let maxConcurrentStreamsPerConnection = 100

    /// Bytes a peer may send on one connection (and on one stream) before this side reads them:
    /// HTTP/2's flow-control window. The gRPC server default, 64 KiB, let a 3 MiB Ingest message
    /// through only after ~50 window updates, one round trip each, and held every other stream
    /// of the connection back meanwhile: a worker received (and so encoded) one message at a
    /// time. 8 MiB is grpc-swift's client default; it also bounds what one connection can make
    /// the server buffer.
    public static let receiveWindowBytes = 8 << 20
    /// The largest HTTP/2 frame this side accepts (the default 16 KiB cut a 3 MiB message into
    /// 192 frames, each a trip through the HTTP/2 handler).
    public static let maxFrameBytes = 1 << 20

    /// A server transport on `listen` with Quiver's limits.
    public static func server(listen: HostAndPort, security: ServerSecurity) -> HTTP2ServerTransport.Posix {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.rpc.maxRequestPayloadSize = QuiverGRPC.maxMessageBytes
        config.http2.maxConcurrentStreams = maxConcurrentStreamsPerConnection
        config.http2.targetWindowSize = receiveWindowBytes
        config.http2.maxFrameSize = maxFrameBytes
        // Idle connections are closed after a while; busy ones are pinged so a peer that vanished
        // without a FIN is noticed. Clients may ping (their search streams stay open while idle).
        config.connection.maxIdleTime = .seconds(30 * 60)
        config.connection.keepalive = .init(time: .seconds(60), timeout: .seconds(20),
                                            clientBehavior: .init(minPingIntervalWithoutCalls: .seconds(10), allowWithoutCalls: true))
        config.channelDebuggingCallbacks.onAcceptHTTP2Stream = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RequestHeaderGuard(), position: .first)
            }
        }
        let address: GRPCNIOTransportCore.SocketAddress = listen.host.contains(":")
            ? .ipv6(host: listen.host, port: listen.port) : .ipv4(host: listen.host, port: listen.port)
        return HTTP2ServerTransport.Posix(address: address, transportSecurity: security.transport, config: config)
    }

    /// A client transport to `address` with Quiver's limits (and keepalive pings, so a dead peer
    /// fails the calls waiting on it instead of leaving them to their deadlines).
    public static func client(to address: HostAndPort, security: ClientSecurity) throws -> HTTP2ClientTransport.Posix {
        try client(to: [address], security: security)
    }

    /// A channel over every one of `addresses` that accepts connections (a coordinator and its
    /// standbys), redialling the others with backoff. Names are resolved by DNS when the list is
    /// one name.
    public static func client(to addresses: [HostAndPort], security: ClientSecurity) throws -> HTTP2ClientTransport.Posix {
        precondition(!addresses.isEmpty, "no address to dial")
        let target: any ResolvableTarget
        if addresses.count == 1 {
            target = addresses[0].resolvableTarget
        } else if addresses.allSatisfy({ $0.resolvableTarget is ResolvableTargets.IPv4 }) {
            target = .ipv4(pairs: addresses.map { ($0.host, $0.port) })
        } else if addresses.allSatisfy({ $0.resolvableTarget is ResolvableTargets.IPv6 }) {
            target = .ipv6(pairs: addresses.map { ($0.host, $0.port) })
        } else {
            throw RPCError(code: .invalidArgument, message: "several addresses must all be IPv4 or all IPv6 literals, got \(addresses.map(\.description).joined(separator: ","))")
        }
        var config = HTTP2ClientTransport.Posix.Config.defaults
        // Searches are latency-bound single messages: send each at once.
        config.connection.flushCoalescing = nil
        config.connection.keepalive = .init(time: .seconds(30), timeout: .seconds(10), allowWithoutCalls: true)
        var serviceConfig = QuiverGRPC.serviceConfig
        // gRPC's pick-first dials only the first of several addresses; round robin keeps a
        // connection to each one that listens and spreads calls over them (a standby answers
        // searches; a change it refuses is sent again by the client library, see
        // `QuiverClient.call`).
        if addresses.count > 1 { serviceConfig.loadBalancingConfig = [.roundRobin] }
        return try HTTP2ClientTransport.Posix(target: target, transportSecurity: security.transport,
                                              config: config, serviceConfig: serviceConfig)
    }
}

extension HostAndPort {
    /// The target gRPC resolves: an IPv4 or IPv6 literal as is, anything else by DNS.
    public var resolvableTarget: any ResolvableTarget {
        if host.contains(":") { return .ipv6(address: host, port: port) }
        if isIPLiteral { return .ipv4(address: host, port: port) }
        return .dns(host: host, port: port)
    }

    /// Whether the host is an IPv4 or IPv6 address rather than a name to resolve.
    public var isIPLiteral: Bool {
        if host.contains(":") { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { UInt8($0) != nil }
    }

    /// Whether this names the loopback interface (where plaintext without credentials is fine).
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
