import ArgumentParser
import QuiverProtocol

/// TLS and the join token, shared by `quiver coordinator` and `quiver worker`. Secrets come from
/// files, never from the command line (which every local user can read).
struct NodeSecurityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("This node's certificate chain (PEM). With --tls-key and --tls-ca it turns on TLS; "
        + "`quiver certs` makes a development set.", valueName: "file"))
    var tlsCert: String?
    @Option(help: ArgumentHelp("This node's private key (PEM).", valueName: "file"))
    var tlsKey: String?
    @Option(help: ArgumentHelp("The cluster CA (PEM) that peers' certificates are checked against.", valueName: "file"))
    var tlsCa: String?
    @Option(help: ArgumentHelp("File holding the cluster's join token: workers present it to register, the coordinator on every call to a worker.",
                               valueName: "file"))
    var joinTokenFile: String?

    func validate() throws {
        let given = [tlsCert, tlsKey, tlsCa].compactMap { $0 }
        guard given.isEmpty || given.count == 3 else {
            throw ValidationError("--tls-cert, --tls-key and --tls-ca go together: give all three or none")
        }
        for path in given where !FileSystemCheck.isReadableFile(path) {
            throw ValidationError("cannot read \(path)")
        }
    }

    var tls: TLSFiles? {
        guard let tlsCert, let tlsKey, let tlsCa else { return nil }
        return TLSFiles(certificateChain: tlsCert, privateKey: tlsKey, trustRoots: tlsCa)
    }

    func joinToken() throws -> JoinToken? {
        guard let joinTokenFile else { return nil }
        do {
            return try JoinToken.load(path: joinTokenFile)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

enum FileSystemCheck {
    static func isReadableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, R_OK) == 0
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Metrics and health ports, shared by `quiver coordinator` and `quiver worker`.
struct ObservabilityOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Serve Prometheus metrics at http://HOST:PORT/metrics (no credentials: bind it where only monitoring reaches).",
                               valueName: "host:port"))
    var metricsListen: String?
    @Option(help: ArgumentHelp("Also serve the gRPC health service alone, in plaintext, on HOST:PORT (for probes that cannot speak TLS).",
                               valueName: "host:port"))
    var healthListen: String?

    func validate() throws {
        if let metricsListen, HostAndPort(metricsListen) == nil { throw ValidationError("--metrics-listen must be HOST:PORT, got \(metricsListen)") }
        if let healthListen, HostAndPort(healthListen) == nil { throw ValidationError("--health-listen must be HOST:PORT, got \(healthListen)") }
    }

    var health: HostAndPort? { healthListen.flatMap(HostAndPort.init) }

    /// Starts the metrics endpoint when asked for; `publish` sets the gauges before each scrape.
    func startMetrics(publish: @escaping @Sendable () -> Void) async throws -> MetricsServer? {
        guard let metricsListen, let address = HostAndPort(metricsListen) else { return nil }
        let registry = QuiverMetrics.bootstrap()
        let server = try await MetricsServer(listen: address) {
            publish()
            return registry.emitToBuffer()
        }
        FileHandle.standardError.write(Data("metrics on http://\(server.address)/metrics\n".utf8))
        return server
    }
}

import Foundation
