import GRPCNIOTransportHTTP2

/// PEM files of one node's TLS identity and the cluster's trust root.
public struct TLSFiles: Sendable, Equatable {
    /// The node's certificate chain (leaf first).
    public var certificateChain: String
    public var privateKey: String
    /// The CA certificate(s) peers are checked against.
    public var trustRoots: String

    public init(certificateChain: String, privateKey: String, trustRoots: String) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.trustRoots = trustRoots
    }
}

/// How a Quiver server secures its port.
public enum ServerSecurity: Sendable, Equatable {
    /// No TLS. Only sensible on loopback; servers say so loudly elsewhere.
    case plaintext
    /// TLS with the node's identity. With `requireClientCertificate`, every client must present a
    /// certificate signed by `trustRoots` (mutual TLS: the worker's port accepts only the
    /// coordinator, whose role the certificate names; see `NodeRole`).
    case tls(TLSFiles, requireClientCertificate: Bool)

    var transport: HTTP2ServerTransport.Posix.TransportSecurity {
        switch self {
        case .plaintext:
            return .plaintext
        case .tls(let files, let requireClientCertificate):
            let chain: [TLSConfig.CertificateSource] = [.file(path: files.certificateChain, format: .pem)]
            let key = TLSConfig.PrivateKeySource.file(path: files.privateKey, format: .pem)
            if requireClientCertificate {
                return .mTLS(certificateChain: chain, privateKey: key) { config in
                    config.trustRoots = .certificates([.file(path: files.trustRoots, format: .pem)])
                    config.clientCertificateVerification = .noHostnameVerification
                }
            }
            return .tls(certificateChain: chain, privateKey: key)
        }
    }

    public var isTLS: Bool { self != .plaintext }
}

/// How a Quiver client (the CLI, the client library, the coordinator dialing workers) secures
/// its connections.
public enum ClientSecurity: Sendable, Equatable {
    case plaintext
    /// Verifies the server against `trustRoots` (PEM) and its name; presents `identity` (a
    /// certificate chain and key) when given, for mutual TLS.
    case tls(trustRoots: String, identity: (certificateChain: String, privateKey: String)?)

    public static func == (lhs: ClientSecurity, rhs: ClientSecurity) -> Bool {
        switch (lhs, rhs) {
        case (.plaintext, .plaintext): true
        case (.tls(let a, let x), .tls(let b, let y)): a == b && x?.certificateChain == y?.certificateChain && x?.privateKey == y?.privateKey
        default: false
        }
    }

    /// A node's own files as client security: trust the cluster CA, present the node's identity.
    public init(_ files: TLSFiles?) {
        if let files {
            self = .tls(trustRoots: files.trustRoots, identity: (files.certificateChain, files.privateKey))
        } else {
            self = .plaintext
        }
    }

    var transport: HTTP2ClientTransport.Posix.TransportSecurity {
        switch self {
        case .plaintext:
            return .plaintext
        case .tls(let trustRoots, let identity):
            return .tls { config in
                config.trustRoots = .certificates([.file(path: trustRoots, format: .pem)])
                config.serverCertificateVerification = .fullVerification
                if let identity {
                    config.certificateChain = [.file(path: identity.certificateChain, format: .pem)]
                    config.privateKey = .file(path: identity.privateKey, format: .pem)
                }
            }
        }
    }
}
