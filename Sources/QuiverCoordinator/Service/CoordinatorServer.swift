import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import QuiverProtocol

/// Serves the Coordinator service on `host:port` until `shutdown()`; port 0 lets the OS pick.
public final class CoordinatorServer: Sendable {
    public let coordinator: Coordinator
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let transport: HTTP2ServerTransport.Posix
    private let stopping = ShutdownSignal()

    public init(host: String, port: Int, options: CoordinatorOptions, logger: Logger) throws(CoordinatorError) {
        coordinator = try Coordinator(options: options, logger: logger)
        transport = HTTP2ServerTransport.Posix(
            address: host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port),
            transportSecurity: .plaintext,
            config: .defaults { $0.rpc.maxRequestPayloadSize = maxMessageBytes })
        server = GRPCServer(transport: transport, services: [CoordinatorService(coordinator: coordinator, stopping: stopping)])
    }

    /// Serves until `shutdown()`; `onListening` gets the bound "host:port" once it is known.
    public func run(onListening: @escaping @Sendable (String) -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask(executorPreference: EventLoopExecutor()) { try await self.server.serve() }
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
        }
    }

    public func shutdown() {
        stopping.fire()
        server.beginGracefulShutdown()
        coordinator.shutdown()
    }
}
