import Crypto
import Foundation
import SwiftASN1
import X509

/// A development certificate set for a cluster: one CA, a coordinator certificate and a worker
/// certificate, each naming its role (`NodeRole`) and the hosts it serves. `quiver certs` writes
/// it; tests make their own. For production, issue the same shape from your own CA: a leaf with
/// serverAuth and clientAuth, DNS/IP names for its address, and the role URI.
public enum DevelopmentCertificates {
    /// The files written into the folder.
    public struct Files: Sendable {
        public let folder: String
        public var ca: String { folder + "/ca.pem" }
        public var caKey: String { folder + "/ca-key.pem" }
        public func certificate(_ role: NodeRole) -> String { folder + "/\(role.rawValue).pem" }
        public func key(_ role: NodeRole) -> String { folder + "/\(role.rawValue)-key.pem" }
        /// The TLS files a node of `role` starts with.
        public func node(_ role: NodeRole) -> TLSFiles {
            TLSFiles(certificateChain: certificate(role), privateKey: key(role), trustRoots: ca)
        }
    }

    /// Writes `ca.pem`, `coordinator.pem`, `worker.pem` and their keys (mode 0600) into `folder`.
    /// `hosts` are the DNS names and IP addresses the node certificates are valid for.
    @discardableResult
    public static func write(to folder: String, hosts: [String] = ["localhost", "127.0.0.1", "::1"],
                             validDays: Int = 365) throws -> Files {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let files = Files(folder: folder)
        let now = Date()
        let expiry = now.addingTimeInterval(Double(validDays) * 86_400)
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName {
            OrganizationName("Quiver")
            CommonName("Quiver development CA")
        }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: expiry, issuer: caName, subject: caName,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(caKey))
        try write(try ca.serializeAsPEM().pemString, to: files.ca, mode: 0o644)
        try write(caKey.pemRepresentation, to: files.caKey, mode: 0o600)

        var names: [GeneralName] = []
        for host in hosts {
            if let bytes = ipAddressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...])))
            } else {
                names.append(.dnsName(host))
            }
        }
        for role in NodeRole.allCases {
            let key = P256.Signing.PrivateKey()
            let subject = try DistinguishedName {
                OrganizationName("Quiver")
                CommonName("quiver-\(role.rawValue)")
            }
            let certificate = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: expiry, issuer: caName, subject: subject,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames(names + [.uniformResourceIdentifier(role.uri)])
                },
                issuerPrivateKey: .init(caKey))
            try write(try certificate.serializeAsPEM().pemString, to: files.certificate(role), mode: 0o644)
            try write(key.pemRepresentation, to: files.key(role), mode: 0o600)
        }
        return files
    }

    private static func write(_ text: String, to path: String, mode: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data((text + "\n").utf8),
                                             attributes: [.posixPermissions: mode]) else {
            throw CredentialError("cannot write \(path)")
        }
    }

    /// The address bytes of an IPv4 or IPv6 literal; nil for a host name.
    static func ipAddressBytes(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
