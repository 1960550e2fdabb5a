import Dispatch
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import QuiverIndex
import QuiverProtocol
import QuiverStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs a worker process: opens (and replays) every collection under the data folder, serves the
/// Worker service over HTTP/2, registers with the coordinator in the background, and stops
/// cleanly on SIGINT or SIGTERM.
public enum WorkerServer {
    public struct Configuration: Sendable {
        /// Where to listen; port 0 lets the OS pick one.
        public var listen: HostAndPort
        public var dataDirectory: String
        /// Coordinator to register with, if any.
        public var coordinator: HostAndPort?
        /// Further coordinators standing by beside it (registration goes to the one listening).
        public var standbyCoordinators: [HostAndPort] = []
        /// The address the coordinator should dial; defaults to `listen` with the bound port.
        public var advertise: HostAndPort?
        /// Stable worker id; defaults to the advertised address.
        public var workerID: String?
        public var threads: Int
        /// The worker's TLS identity and the cluster CA: with it, the port speaks TLS and accepts
        /// only clients whose certificate names the coordinator role (mutual TLS), and the
        /// worker dials the coordinator over TLS to register.
        public var tls: TLSFiles?
        /// The cluster's join token: presented when registering, and required of every caller.
        public var joinToken: JoinToken?
        /// A plaintext port serving only `grpc.health.v1`, for probes that cannot speak TLS.
        public var healthListen: HostAndPort?
        /// A second port serving searches as length-prefixed frames (framing.proto), with the
        /// gRPC port's TLS and credentials; nil: none. The advertised host with its bound port is
        /// reported in Stats, where the coordinator learns it.
        public var searchListen: HostAndPort?

        public init(listen: HostAndPort, dataDirectory: String, coordinator: HostAndPort? = nil, advertise: HostAndPort? = nil,
                    workerID: String? = nil, threads: Int = availableCores, tls: TLSFiles? = nil, joinToken: JoinToken? = nil) {
            self.listen = listen
            self.dataDirectory = dataDirectory
            self.coordinator = coordinator
            self.advertise = advertise
            self.workerID = workerID
            self.threads = threads
            self.tls = tls
            self.joinToken = joinToken
        }
    }

    /// Serves until SIGINT or SIGTERM. `onListening` gets the bound address (the real port)
    /// once the socket accepts connections.
    /// `onOpened` gets the worker once its data is replayed, before it serves (the command line
    /// starts the metrics endpoint there).
    public static func run(_ configuration: Configuration, logger: Logger,
                           onOpened: (ShardWorker) async throws -> Void = { _ in },
                           onListening: @Sendable (HostAndPort) -> Void) async throws {
        // Opened (and replayed) before binding, so nothing is served from a half-read folder.
        let options = ShardWorker.Options(workerID: configuration.workerID ?? configuration.listen.description,
                                          threads: configuration.threads)
        let worker = try ShardWorker.open(dataDirectory: configuration.dataDirectory, options: options, logger: logger)
        try await onOpened(worker)
        try await serve(worker, configuration, logger: logger, onListening: onListening) {
            for await signal in SignalStream.watching([SIGINT, SIGTERM]) {
                logger.info("stopping", metadata: ["signal": "\(signal)"])
                return
            }
        }
    }

    /// Serves `worker` until `stop` returns, then finishes the requests in flight and records
    /// the committed segment lengths. (`run` stops on signals; tests stop it directly.)
    public static func serve(_ worker: ShardWorker, _ configuration: Configuration, logger: Logger,
                             onListening: @Sendable (HostAndPort) -> Void,
                             until stop: @escaping @Sendable () async -> Void) async throws {
        let listen = configuration.listen
        let security: ServerSecurity = configuration.tls.map { .tls($0, requireClientCertificate: true) } ?? .plaintext
        let credentials = ServerCredentials(joinToken: configuration.joinToken, requireCoordinatorCertificate: configuration.tls != nil)
        if !listen.isLoopback && !credentials.isEnforcing {
            logger.warning("SERVING WITHOUT CREDENTIALS on \(listen), which is not a loopback address: anyone who reaches this port can store, read and delete this worker's data; start with --tls-cert/--tls-key/--tls-ca and --join-token-file")
        }
        let transport = QuiverTransport.server(listen: listen, security: security)
        let stopping = ShutdownSignal()
        let health = HealthService(stopping: stopping) { service in
            switch service {
            case "": .serving
            case Quiver_V1_Worker.descriptor.fullyQualifiedService: worker.isServing ? .serving : .notServing
            default: nil
            }
        }
        let server = GRPCServer(
            transport: transport, services: [WorkerService(worker: worker, stopping: stopping), health],
            interceptors: [RPCMetricsInterceptor(),
                           AuthorizationInterceptor(credentials: credentials, requirement: WorkerService.requirement),
                           LeaderEpochInterceptor()])
        // Bound first: a port that is taken fails the start before anything is served.
        let framed: FramedServer<WorkerSearchResponder>?
        if let searchListen = configuration.searchListen {
            framed = try await FramedServer.start(
                listen: searchListen, security: security, responder: WorkerSearchResponder(worker: worker, credentials: credentials),
                log: { logger.info("\($0)") })
        } else {
            framed = nil
        }
        let healthTransport = configuration.healthListen.map { QuiverTransport.server(listen: $0, security: .plaintext) }
        let healthServer = healthTransport.map { GRPCServer(transport: $0, services: [health]) }
        let stopper = Task {
            await stop()
            if !Task.isCancelled {
                stopping.fire()
                server.beginGracefulShutdown()
                healthServer?.beginGracefulShutdown()
                await framed?.shutdown(grace: .seconds(10))
            }
        }
        var registration: Task<Void, Never>?
        defer {
            stopper.cancel()
            registration?.cancel()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: LoopFollowingExecutor()) { try await server.serve() }
            if let healthServer, let healthTransport {
                group.addTask { try await healthServer.serve() }
                group.addTask {
                    let address = try await healthTransport.listeningAddress
                    logger.info("health on \(address.ipv4.map { "\($0.host):\($0.port)" } ?? "\(address)")")
                }
            }
            let bound: HostAndPort
            do {
                let address = try await transport.listeningAddress
                guard let port = address.ipv4?.port ?? address.ipv6?.port else {
                    throw RPCError(code: .internalError, message: "listening on \(address), which has no TCP port")
                }
                bound = HostAndPort(host: listen.host, port: port)
            } catch {
                server.beginGracefulShutdown()
                healthServer?.beginGracefulShutdown()
                await framed?.shutdown(grace: .zero)
                throw error
            }
            onListening(bound)
            let advertised = configuration.advertise ?? bound
            if let framed {
                let searchAddress = HostAndPort(host: advertised.host, port: framed.address.port)
                worker.searchAddress = searchAddress.description
                logger.info("framed search port on \(framed.address) (announced as \(searchAddress))")
            }
            // With port 0 the default id (the address) is known only now.
            worker.workerID = configuration.workerID ?? advertised.description
            if let coordinator = configuration.coordinator {
                let workerID = worker.workerID
                let (security, joinToken) = (ClientSecurity(configuration.tls), configuration.joinToken)
                registration = Task {
                    await register(with: [coordinator] + configuration.standbyCoordinators, security: security, joinToken: joinToken, address: advertised,
                                   workerID: workerID, logger: logger)
                }
            }
            try await group.waitForAll()
        }
        // Stopped already when the gRPC server stopped by a signal; this covers its failing.
        await framed?.shutdown(grace: .seconds(5))
        worker.checkpoint()
        logger.info("stopped")
    }

    /// Calls RegisterWorker until it succeeds (the coordinator may start after the worker),
    /// backing off from 250 ms to 10 s between attempts.
    static func register(with coordinators: [HostAndPort], security: ClientSecurity, joinToken: JoinToken?, address: HostAndPort,
                         workerID: String, logger: Logger) async {
        var request = Quiver_V1_RegisterWorkerRequest()
        request.address = address.description
        request.workerID = workerID
        var delay = Duration.milliseconds(250)
        while !Task.isCancelled {
            do {
                let transport = try QuiverTransport.client(to: coordinators, security: security)
                let response = try await withGRPCClient(transport: transport) { client in
                    var options = CallOptions.defaults
                    options.timeout = .seconds(5)
                    return try await Quiver_V1_Coordinator.Client(wrapping: client).registerWorker(
                        request, metadata: .bearer(joinToken?.value), options: options)
                }
                logger.info("registered with coordinator", metadata: [
                    "coordinator": "\(coordinators.map(\.description).joined(separator: ","))", "address": "\(address)", "workers_known": "\(response.workersKnown)",
                ])
                return
            } catch let error as RPCError where error.code == .permissionDenied || error.code == .unauthenticated || error.code == .invalidArgument {
                // Retrying cannot help: the credentials or the registration itself are refused.
                logger.error("the coordinator refused this worker's registration; not retrying", metadata: [
                    "coordinator": "\(coordinators.map(\.description).joined(separator: ","))", "error": "\(error.message)",
                ])
                return
            } catch {
                logger.warning("registering with the coordinator failed; retrying", metadata: [
                    "coordinator": "\(coordinators.map(\.description).joined(separator: ","))", "error": "\(error)", "retry_in": "\(delay)",
                ])
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(10))
        }
    }
}

/// Delivers SIGINT/SIGTERM as an async sequence instead of killing the process, so the server
/// can finish in-flight requests and record its committed lengths.
enum SignalStream {
    static func watching(_ signals: [Int32]) -> AsyncStream<Int32> {
        AsyncStream { continuation in
            let sources = SignalSources(signals.map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { continuation.yield(number) }
                source.resume()
                return source
            })
            continuation.onTermination = { _ in sources.cancel() }
        }
    }

    private final class SignalSources: @unchecked Sendable {
        private let sources: [any DispatchSourceSignal]
        init(_ sources: [any DispatchSourceSignal]) { self.sources = sources }
        func cancel() { sources.forEach { $0.cancel() } }
    }
}
