import ArgumentParser
import Dispatch
import Foundation
import GRPCCore
import Logging
import QuiverCoordinator
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import Synchronization

/// `quiver coordinator`: serves the client-facing Coordinator service until SIGINT/SIGTERM.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: collections, training, placement, loading and scatter/gather search.")

    @Option(help: "Address to serve on, HOST:PORT (port 0 lets the OS choose; the line printed on start names it).")
    var listen = "127.0.0.1:7700"
    @Option(help: "Directory for collections, models, shard maps and the worker set (not used with --etcd).")
    var dataDir: String?
    @Option(help: ArgumentHelp("Keep the state in etcd instead (comma-separated http://HOST:PORT members): coordinators sharing an --etcd-prefix elect one leader; the others stand by (answering searches, refusing changes) until it goes.",
                               valueName: "urls"))
    var etcd: String?
    @Option(help: "Key prefix in etcd for this cluster's state and leadership.")
    var etcdPrefix = "/quiver/default"
    @Option(help: "Seconds the leadership outlives its holder (a standby takes over this long after the leader dies).")
    var leaseTtl = 5
    @Option(help: "Comma-separated worker addresses HOST:PORT (workers may also register themselves).")
    var workers: String?
    @Option(help: "Threads for training, assignment and coarse probing (default: all cores).")
    var threads: Int?
    @Option(help: ArgumentHelp("Server-side imports (train --input, load --input) may read files below this folder only; without it they are off.",
                               valueName: "dir"))
    var importRoot: String?
    @Option(help: ArgumentHelp("Client bearer tokens, one \"ROLE NAME TOKEN\" per line (roles read, write, admin); without it clients are not authenticated.",
                               valueName: "file"))
    var tokensFile: String?
    @Option(help: "Seconds between worker heartbeats (health, statistics, repairs).")
    var heartbeatInterval: Double = 2
    @Option(help: "Seconds a worker may stay down before its lists are re-placed on other workers.")
    var deadAfter: Double = 120
    @Option(help: "How searches reach workers: framed (their framed search port when they announce one, else gRPC) or grpc.")
    var workerSearchTransport: WorkerSearchTransport = .framed
    @Option(help: ArgumentHelp("Also serve searches as length-prefixed protobuf frames on this address, HOST:PORT (port 0 picks a free port), with the same TLS and tokens as --listen: the Swift client library's fast path (QUIVER_SEARCH_ADDRESS, --search-address). Everything else, and other clients, use --listen.",
                               valueName: "host:port"))
    var searchListen: String?
    @OptionGroup var security: NodeSecurityOptions
    @OptionGroup var observability: ObservabilityOptions

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0 ... 65_535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, got \(listen)")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let searchListen, HostAndPort(searchListen) == nil { throw ValidationError("--search-listen must be HOST:PORT, got \(searchListen)") }
        let workerList = (workers ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var logger = Logger(label: "quiver.coordinator")
        logger.logLevel = .info
        let tokens: AccessTokens?
        let importFolder: ImportRoot?
        do {
            tokens = try tokensFile.map { path throws(CredentialError) in try AccessTokens.load(path: path) }
            importFolder = try importRoot.map { path throws(ImportError) in try ImportRoot(path) }
        } catch let error as CredentialError {
            throw ValidationError(error.description)
        } catch {
            throw ValidationError("\(error)")
        }
        guard etcd != nil || dataDir != nil else { throw ValidationError("give --data-dir (or --etcd)") }
        guard (2 ... 300).contains(leaseTtl) else { throw ValidationError("--lease-ttl must be 2 to 300 seconds, got \(leaseTtl)") }
        guard etcdPrefix.hasPrefix("/"), !etcdPrefix.hasSuffix("/"), etcdPrefix.count > 1 else {
            throw ValidationError("--etcd-prefix must start with / and not end with it, got \(etcdPrefix)")
        }
        let joinToken = try security.joinToken()
        let tls = security.tls
        guard heartbeatInterval > 0, heartbeatInterval <= 3600 else { throw ValidationError("--heartbeat-interval must be in (0, 3600] seconds") }
        guard deadAfter > 0 else { throw ValidationError("--dead-after must be positive") }
        var options = CoordinatorOptions(dataDirectory: dataDir ?? "", workers: workerList, threads: threads ?? availableCores,
                                         heartbeatInterval: .milliseconds(Int64(heartbeatInterval * 1000)),
                                         importRoot: importFolder, workerSecurity: ClientSecurity(tls), joinToken: joinToken,
                                         deadAfter: .milliseconds(Int64(deadAfter * 1000)))
        options.workerSearchTransport = workerSearchTransport
        let credentials = ServerCredentials(tokens: tokens, joinToken: joinToken)
        var leadership: EtcdLeadership?
        var metadata: EtcdMetadata?
        let leaderName = LeaderName()
        if let etcd {
            let client: EtcdClient
            do {
                client = try EtcdClient(urls: etcd)
            } catch {
                throw ValidationError(error.description)
            }
            let logger = logger
            let state = EtcdMetadata(client: client, prefix: etcdPrefix + "/meta/") { reason in Self.stepDown(reason, logger: logger) }
            options.metadata = state
            options.standingBy = true
            metadata = state
            leadership = EtcdLeadership(client: client, prefix: etcdPrefix, ttl: leaseTtl, identity: listen)
        }
        defer { leadership?.resign() }
        let server: CoordinatorServer
        do {
            server = try CoordinatorServer(host: host, port: port, options: options,
                                           security: tls.map { .tls($0, requireClientCertificate: false) } ?? .plaintext,
                                           credentials: credentials, healthListen: observability.health,
                                           searchListen: searchListen.flatMap(HostAndPort.init),
                                           leader: { leaderName.value.withLock { $0 } }, logger: logger)
        } catch {
            throw ValidationError(error.description)
        }
        // Signals become a graceful shutdown: in-flight RPCs finish, then the process exits.
        let signals = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { server.shutdown() }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        let coordinator = server.coordinator
        let metrics = try await observability.startMetrics { coordinator.publishGauges() }
        defer { _ = metrics }
        // With etcd: answer searches standing by, and lead once the leadership is ours.
        let state = metadata
        let campaign = leadership.map { leadership in
            Task.detached { [etcdPrefix, leaseTtl, logger] in
                logger.info("standing by; campaigning for the leadership of \(etcdPrefix) in etcd (\(leadership.client.endpoints.map(\.description).joined(separator: ", ")))")
                await leadership.campaign { leader, message in
                    leaderName.value.withLock { $0 = leader ?? "unknown" }
                    logger.notice("\(message)")
                }
                guard !Task.isCancelled else { return }
                leaderName.value.withLock { $0 = "this one" }
                state?.lead(leadership)
                leadership.keepLeading { reason in Self.stepDown("lost the leadership: \(reason)", logger: logger) }
                do {
                    try await coordinator.promote(epoch: leadership.revision)
                    logger.notice("leading \(etcdPrefix) (etcd key \(leadership.key), revision \(leadership.revision), lease TTL \(leaseTtl) s)")
                } catch {
                    Self.stepDown("cannot take over: \(error)", logger: logger)
                }
            }
        }
        defer { campaign?.cancel() }
        try await server.run(onSearchListening: { address in
            print("quiver coordinator framed search port on \(address)")
            fflush(nil)
        }) { address in
            print("quiver coordinator listening on \(address)")
            fflush(nil)  // all streams: the line must reach a pipe reader now
        }
    }

    /// A coordinator that no longer leads must not act on what it holds: it exits (status 75),
    /// after a moment for the refusal in hand to reach its caller.
    static func stepDown(_ reason: String, logger: Logger) {
        logger.critical("\(reason); exiting so that a restart stands by")
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { Glibc.exit(75) }
    }
}

/// Who leads, as a coordinator standing by last heard it (named in its refusals).
final class LeaderName: Sendable {
    let value = Mutex("unknown")
}

extension WorkerSearchTransport: ExpressibleByArgument {}
