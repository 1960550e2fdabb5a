import ArgumentParser
import Dispatch
import Foundation
import Logging
import QuiverCoordinator
import QuiverIndex

/// `quiver coordinator`: serves the client-facing Coordinator service until SIGINT/SIGTERM.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: collections, training, placement, loading and scatter/gather search.")

    @Option(help: "Address to serve on, HOST:PORT (port 0 lets the OS choose; the line printed on start names it).")
    var listen = "127.0.0.1:7700"
    @Option(help: "Directory for collections, models, shard maps and the worker set.")
    var dataDir: String
    @Option(help: "Comma-separated worker addresses HOST:PORT (workers may also register themselves).")
    var workers: String?
    @Option(help: "Threads for training, assignment and coarse probing (default: all cores).")
    var threads: Int?

    func run() async throws {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
              (0 ... 65_535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, got \(listen)")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        let workerList = (workers ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var logger = Logger(label: "quiver.coordinator")
        logger.logLevel = .info
        let options = CoordinatorOptions(dataDirectory: dataDir, workers: workerList, threads: threads ?? availableCores)
        let server: CoordinatorServer
        do {
            server = try CoordinatorServer(host: host, port: port, options: options, logger: logger)
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
        try await server.run { address in
            print("quiver coordinator listening on \(address)")
            fflush(nil)  // all streams: the line must reach a pipe reader now
        }
    }
}
