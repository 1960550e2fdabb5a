import ArgumentParser
import Foundation
import Logging
import QuiverIndex
import QuiverProtocol
import QuiverWorker

/// `quiver worker`: serves the Worker service for the coordinator, storing its lists under
/// `--data-dir`. Prints exactly one line to stdout once listening (logs go to stderr), so
/// scripts and tests can read the real port when `--listen` asks for port 0.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a shard worker: holds inverted lists, ingests and scans them for the coordinator.")

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free port).")
    var listen: String
    @Option(help: "Folder holding this worker's collections; created if missing, replayed on start.")
    var dataDir: String
    @Option(help: "Coordinator to register with, HOST:PORT, or several comma-separated (a leader and its standbys) (retried in the background until one answers).")
    var coordinator: String?
    @Option(help: "Address the coordinator should dial, HOST:PORT (default: the listen address with the bound port).")
    var advertise: String?
    @Option(help: "Stable worker id (default: the advertised address).")
    var id: String?
    @Option(help: ArgumentHelp("Also serve searches as length-prefixed protobuf frames on this address, HOST:PORT (port 0 picks a free port), with the same TLS and join token as --listen; the coordinator learns it from the worker and sends searches there instead of over gRPC.",
                               valueName: "host:port"))
    var searchListen: String?
    @Option(help: "Threads for encoding and scanning (default: all cores).")
    var threads: Int?
    @OptionGroup var security: NodeSecurityOptions
    @OptionGroup var observability: ObservabilityOptions

    func validate() throws {
        guard HostAndPort(listen) != nil else { throw ValidationError("--listen must be HOST:PORT, got \(listen)") }
        if let coordinator, HostAndPort.list(coordinator)?.allSatisfy({ $0.port != 0 }) != true {
            throw ValidationError("--coordinator must be HOST:PORT (or several, comma-separated) with non-zero ports, got \(coordinator)")
        }
        if let advertise, HostAndPort(advertise) == nil || HostAndPort(advertise)!.port == 0 {
            throw ValidationError("--advertise must be HOST:PORT with a non-zero port, got \(advertise)")
        }
        if let searchListen, HostAndPort(searchListen) == nil {
            throw ValidationError("--search-listen must be HOST:PORT, got \(searchListen)")
        }
        if let threads, threads <= 0 { throw ValidationError("--threads must be positive, got \(threads)") }
        if let id, id.isEmpty { throw ValidationError("--id must not be empty") }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let logger = Logger(label: "quiver.worker")
        var configuration = WorkerServer.Configuration(
            listen: HostAndPort(listen)!, dataDirectory: dataDir, coordinator: coordinator.flatMap { HostAndPort.list($0)?.first },
            advertise: advertise.flatMap(HostAndPort.init), workerID: id, threads: threads ?? availableCores,
            tls: security.tls, joinToken: try security.joinToken())
        configuration.healthListen = observability.health
        configuration.searchListen = searchListen.flatMap(HostAndPort.init)
        configuration.standbyCoordinators = coordinator.flatMap { HostAndPort.list($0)?.dropFirst().map { $0 } } ?? []
        var metrics: MetricsServer?
        defer { _ = metrics }
        try await WorkerServer.run(configuration, logger: logger, onOpened: { worker in
            metrics = try await observability.startMetrics { worker.publishGauges() }
        }) { address in
            // An unbuffered write: the line must reach a pipe now, not when a buffer fills.
            FileHandle.standardOutput.write(Data("quiver worker listening on \(address)\n".utf8))
        }
    }
}
