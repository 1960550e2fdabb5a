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
