import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import QuiverProtocol
import Synchronization

/// Serves the Coordinator service (and the standard health service) on `host:port` until
/// `shutdown()`; port 0 lets the OS pick.
public final class CoordinatorServer: Sendable {
    public let coordinator: Coordinator
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let transport: HTTP2ServerTransport.Posix
    /// The plaintext health-only port, when asked for (probes that cannot speak TLS).
    private let healthServer: GRPCServer<HTTP2ServerTransport.Posix>?
    private let healthTransport: HTTP2ServerTransport.Posix?
    private let logger: Logger
    private let stopping = ShutdownSignal()
    /// Where the framed search port (SearchStream as frames, for the Swift client library)
    /// is to listen, and what it needs to start.
    private let searchListen: HostAndPort?
    private let security: ServerSecurity
    private let credentials: ServerCredentials
    private let framed = Mutex<FramedServer<CoordinatorSearchResponder>?>(nil)

    /// `healthListen`, when given, serves `grpc.health.v1` alone in plaintext (Kubernetes gRPC
    /// probes cannot present a certificate or token), beside the main port.
    public init(host: String, port: Int, options: CoordinatorOptions, security: ServerSecurity = .plaintext,
                credentials: ServerCredentials = ServerCredentials(), healthListen: HostAndPort? = nil,
                searchListen: HostAndPort? = nil,
                leader: @escaping @Sendable () -> String = { "unknown" }, logger: Logger) throws(CoordinatorError) {
        coordinator = try Coordinator(options: options, logger: logger)
        self.searchListen = searchListen
        self.security = security
        self.credentials = credentials
        let listen = HostAndPort(host: host, port: port)
        if !listen.isLoopback {
            if !security.isTLS {
                logger.warning("SERVING WITHOUT TLS on \(listen), which is not a loopback address: anyone on the network can read and alter the traffic; start with --tls-cert/--tls-key/--tls-ca")
            }
            if credentials.tokens == nil {
                logger.warning("SERVING WITHOUT CLIENT AUTHENTICATION on \(listen): anyone who reaches this port can create, load, search and drop collections; start with --tokens-file")
            }
            if credentials.joinToken == nil {
                logger.warning("NO JOIN TOKEN on \(listen): anyone who reaches this port can register a worker; start with --join-token-file")
            }
        }
        if let searchListen, !searchListen.isLoopback {
            // The framed search port shares the gRPC port's TLS and tokens, and gets its own warnings.
            if !security.isTLS {
                logger.warning("SERVING SEARCHES WITHOUT TLS on \(searchListen) (--search-listen), which is not a loopback address: anyone on the network can read the queries and answers; start with --tls-cert/--tls-key/--tls-ca")
            }
            if credentials.tokens == nil {
                logger.warning("SERVING SEARCHES WITHOUT CLIENT AUTHENTICATION on \(searchListen) (--search-listen): anyone who reaches this port can search every collection; start with --tokens-file")
            }
        }
        transport = QuiverTransport.server(listen: listen, security: security)
        let coordinator = coordinator
        let health = HealthService(stopping: stopping) { service in
            switch service {
            case "": .serving
            case Quiver_V1_Coordinator.descriptor.fullyQualifiedService: coordinator.isServing ? .serving : .notServing
            default: nil
            }
        }
        server = GRPCServer(
            transport: transport,
            services: [CoordinatorService(coordinator: coordinator, stopping: stopping, credentials: credentials), health],
            interceptors: [RPCMetricsInterceptor(),
                           AuthorizationInterceptor(credentials: credentials, requirement: CoordinatorService.requirement),
                           LeaderInterceptor(coordinator: coordinator, leader: leader)])
        healthTransport = healthListen.map { QuiverTransport.server(listen: $0, security: .plaintext) }
        healthServer = healthTransport.map { GRPCServer(transport: $0, services: [health]) }
        self.logger = logger
    }

    /// Serves until `shutdown()`; `onListening` gets the bound "host:port" once it is known,
    /// after `onSearchListening` got the framed search port's (when there is one).
    public func run(onSearchListening: @escaping @Sendable (HostAndPort) -> Void = { _ in },
                    onListening: @escaping @Sendable (String) -> Void) async throws {
        // Bound first: a port that is taken fails the start before anything is served.
        if let searchListen {
            let server = try await FramedServer.start(
                listen: searchListen, security: security,
                responder: CoordinatorSearchResponder(coordinator: coordinator, credentials: credentials),
                log: { [logger] in logger.info("\($0)") })
            framed.withLock { $0 = server }
            logger.info("framed search port on \(server.address)")
            onSearchListening(server.address)
        }
        do {
            try await serve(onListening: onListening)
        } catch {
            await framed.withLock({ $0 })?.shutdown(grace: .zero)
            throw error
        }
        // Stopped already when shutdown() ran; this covers the gRPC server failing.
        await framed.withLock({ $0 })?.shutdown(grace: .seconds(5))
    }

    private func serve(onListening: @escaping @Sendable (String) -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: LoopFollowingExecutor()) { try await self.server.serve() }
            if let healthServer = self.healthServer, let healthTransport = self.healthTransport {
                group.addTask { try await healthServer.serve() }
                group.addTask {
                    let address = try await healthTransport.listeningAddress
                    self.logger.info("health on \(address.ipv4.map { "\($0.host):\($0.port)" } ?? "\(address)")")
                }
            }
            group.addTask {
                let address = try await self.transport.listeningAddress
                if let ipv4 = address.ipv4 {
                    onListening("\(ipv4.host):\(ipv4.port)")
                } else if let ipv6 = address.ipv6 {
                    onListening("[\(ipv6.host)]:\(ipv6.port)")
                } else {
                    onListening("\(address)")
                }
            }
            let background = Task { await self.coordinator.run() }
            defer { background.cancel() }
            try await group.waitForAll()
            // Searches and loads in flight were answered; server-side load jobs stop at a batch
            // boundary with their progress recorded, and resume on the next start.
            await self.coordinator.pauseJobs()
        }
    }

    public func shutdown() {
        stopping.fire()
        if let server = framed.withLock({ $0 }) { Task { await server.shutdown(grace: .seconds(10)) } }
        server.beginGracefulShutdown()
        healthServer?.beginGracefulShutdown()
        coordinator.shutdown()
    }
}
