import ArgumentParser
import QuiverProtocol

/// `quiver certs`: a development CA and node certificates for TLS on every hop.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Write a development CA and coordinator/worker certificates (mutual TLS) into a folder.",
        discussion: """
            Writes ca.pem, coordinator.pem, worker.pem and their -key.pem files. Start the coordinator and \
            workers with --tls-cert <role>.pem --tls-key <role>-key.pem --tls-ca ca.pem; clients verify the \
            coordinator with --tls-ca ca.pem (or $QUIVER_TLS_CA). Keep ca-key.pem away from the nodes.
            """)

    @Option(help: "Folder to write into (created if missing).") var out: String
    @Option(name: .customLong("host"), help: "A DNS name or IP address the node certificates are valid for (repeatable; default: localhost, 127.0.0.1, ::1).")
    var hosts: [String] = []
    @Option(help: "Days the certificates are valid.") var days = 365

    func run() throws {
        let files = try DevelopmentCertificates.write(to: out, hosts: hosts.isEmpty ? ["localhost", "127.0.0.1", "::1"] : hosts,
                                                      validDays: days)
        print("wrote \(files.ca), \(files.certificate(.coordinator)), \(files.certificate(.worker)) and their keys")
    }
}
