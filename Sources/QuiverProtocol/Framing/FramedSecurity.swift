import GRPCCore
import NIOCore
import NIOSSL
import X509

/// The TLS of a framed port, built from the very files and rules of the gRPC port beside it:
/// the same certificate chain and key, the same trust root, and — where the gRPC port demands a
/// client certificate (a worker's port: mutual TLS) — the same demand.
extension ServerSecurity {
    /// The NIOSSL context a framed server wraps each connection in; nil for plaintext.
    public func framedContext() throws -> NIOSSLContext? {
        switch self {
        case .plaintext:
            return nil
        case .tls(let files, let requireClientCertificate):
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(files.certificateChain).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: files.privateKey, format: .pem)))
            configuration.minimumTLSVersion = .tlsv12
            if requireClientCertificate {
                // BoringSSL then refuses a client that presents no certificate, or one the CA did
                // not sign; which role it names is checked on the hello (`FramedPeer`).
                configuration.trustRoots = .file(files.trustRoots)
                configuration.certificateVerification = .noHostnameVerification
            }
            return try NIOSSLContext(configuration: configuration)
        }
    }
}

extension ClientSecurity {
    /// The NIOSSL context a framed client wraps its connections in; nil for plaintext. The
    /// server is verified against the trust root and the name it was dialled by, as gRPC does.
    public func framedContext() throws -> NIOSSLContext? {
        switch self {
        case .plaintext:
            return nil
        case .tls(let trustRoots, let identity):
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.minimumTLSVersion = .tlsv12
            configuration.trustRoots = .file(trustRoots)
            configuration.certificateVerification = .fullVerification
            if let identity {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(identity.certificateChain).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: identity.privateKey, format: .pem))
            }
            return try NIOSSLContext(configuration: configuration)
        }
    }
}

/// Who opened a framed connection: what its hello and its TLS session say.
public struct FramedPeer: Sendable {
    /// The hello's bearer credential (nil when empty).
    public var token: String?
    /// The client certificate (mutual TLS), when one was presented.
    public var certificate: Certificate?
    /// The method the hello asked for.
    public var method: String

    public init(token: String?, certificate: Certificate?, method: String) {
        self.token = token
        self.certificate = certificate
        self.method = method
    }
}

extension ServerCredentials {
    /// Checks a framed connection against `requirement`, exactly as `check(_:metadata:context:)`
    /// checks a gRPC call with the same token and certificate.
    public func check(_ requirement: AccessRequirement, peer: FramedPeer) throws(RPCError) {
        // Messages name the method as a gRPC call's would ("SearchStream").
        let method = peer.method.split(separator: "/").last.map(String.init) ?? peer.method
        try check(requirement, method: method, bearerToken: peer.token, peerCertificate: peer.certificate)
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// The TLS peer's certificate as an X.509 value; nil without TLS or without one.
    func framedPeerCertificate() -> Certificate? {
        guard let certificate = try? nioSSL_peerCertificate(), let der = try? certificate.toDERBytes() else { return nil }
        return try? Certificate(derEncoded: der)
    }
}
