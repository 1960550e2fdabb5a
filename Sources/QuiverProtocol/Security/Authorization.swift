import GRPCCore
import GRPCNIOTransportHTTP2
import X509

/// The role a node certificate grants on the internal hop, named by a URI subject alternative
/// name (`urn:quiver:role:coordinator`, `urn:quiver:role:worker`); `quiver certs` writes them.
public enum NodeRole: String, Sendable, CaseIterable {
    case coordinator
    case worker

    public var uri: String { "urn:quiver:role:\(rawValue)" }

    /// The roles a certificate names.
    public static func roles(of certificate: Certificate) -> Set<NodeRole> {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        var roles = Set<NodeRole>()
        for name in names {
            if case .uniformResourceIdentifier(let uri) = name, let role = allCases.first(where: { $0.uri == uri }) {
                roles.insert(role)
            }
        }
        return roles
    }
}

/// What a method demands of its caller.
public enum AccessRequirement: Sendable, Equatable {
    /// Open to anyone who reaches the port (health probes).
    case none
    /// A client bearer token of at least this role (when the server has tokens).
    case role(AccessRole)
    /// The internal hop: the coordinator's certificate (mutual TLS) and/or the join token.
    case coordinator
    /// The join token (or an admin token): a worker announcing itself.
    case joinCredential
}

/// The credentials a server checks, and how.
public struct ServerCredentials: Sendable {
    /// Client tokens; nil = clients are not authenticated (loopback demo mode).
    public var tokens: AccessTokens?
    /// The internal hop's shared secret; nil = not required.
    public var joinToken: JoinToken?
    /// Mutual TLS on this port: callers of `.coordinator` methods must present a certificate
    /// naming the coordinator role.
    public var requireCoordinatorCertificate: Bool

    public init(tokens: AccessTokens? = nil, joinToken: JoinToken? = nil, requireCoordinatorCertificate: Bool = false) {
        self.tokens = tokens
        self.joinToken = joinToken
        self.requireCoordinatorCertificate = requireCoordinatorCertificate
    }

    /// Whether any credential is checked at all.
    public var isEnforcing: Bool { tokens != nil || joinToken != nil || requireCoordinatorCertificate }

    /// The role of a client call's token: nil when it carries none; throws when it is unknown.
    public func role(of metadata: Metadata) throws(RPCError) -> AccessRole? {
        guard let token = bearerToken(in: metadata) else { return nil }
        if let entry = tokens?.entry(forToken: token) { return entry.role }
        throw RPCError(code: .unauthenticated, message: "the bearer token is not known to this server")
    }

    /// Checks a call against `requirement`; throws UNAUTHENTICATED or PERMISSION_DENIED.
    public func check(_ requirement: AccessRequirement, metadata: Metadata, context: ServerContext) throws(RPCError) {
        let specific = context.transportSpecific as? HTTP2ServerTransport.Posix.Context
        try check(requirement, method: context.descriptor.method, bearerToken: bearerToken(in: metadata),
                  peerCertificate: specific?.peerCertificate)
    }

    /// The one check behind every port (gRPC calls and framed connections): `method` names the
    /// call in messages, `bearerToken` is the credential it carries, `peerCertificate` the
    /// client certificate of its TLS session.
    public func check(_ requirement: AccessRequirement, method: String, bearerToken token: String?,
                      peerCertificate: Certificate?) throws(RPCError) {
        switch requirement {
        case .none:
            return
        case .role(let needed):
            guard let tokens else { return }
            guard let token else {
                throw RPCError(code: .unauthenticated, message: "\(method) needs a token of role \(needed) or higher: send "
                    + "\"authorization: Bearer <token>\" (the CLI reads $QUIVER_TOKEN or --token-file)")
            }
            guard let role = tokens.entry(forToken: token)?.role else {
                throw RPCError(code: .unauthenticated, message: "the bearer token is not known to this server")
            }
            guard role >= needed else {
                throw RPCError(code: .permissionDenied, message: "\(method) needs role \(needed); this token has role \(role)")
            }
        case .coordinator:
            if requireCoordinatorCertificate {
                guard let certificate = peerCertificate else {
                    throw RPCError(code: .unauthenticated, message: "\(method) is only for the coordinator: present its client certificate")
                }
                guard NodeRole.roles(of: certificate).contains(.coordinator) else {
                    throw RPCError(code: .permissionDenied, message: "\(method) is only for the coordinator; the presented certificate "
                        + "does not name the role \(NodeRole.coordinator.uri)")
                }
            }
            if let joinToken {
                guard let token else {
                    throw RPCError(code: .unauthenticated, message: "\(method) is only for the coordinator: it needs the cluster's join token")
                }
                guard joinToken.matches(token) else {
                    throw RPCError(code: .permissionDenied, message: "\(method) is only for the coordinator: the token is not the join token")
                }
            }
        case .joinCredential:
            guard joinToken != nil || tokens != nil else { return }
            if let token, joinToken?.matches(token) == true { return }
            if let token, let entry = tokens?.entry(forToken: token) {
                guard entry.role == .admin else {
                    throw RPCError(code: .permissionDenied, message: "\(method) needs the join token or an admin token; this token has role \(entry.role)")
                }
                return
            }
            throw RPCError(code: token == nil ? .unauthenticated : .permissionDenied,
                           message: "\(method) needs the cluster's join token (a worker reads it from --join-token-file)")
        }
    }
}

/// Checks every call against its method's requirement before the handler runs.
public struct AuthorizationInterceptor: ServerInterceptor {
    let credentials: ServerCredentials
    let requirement: @Sendable (MethodDescriptor) -> AccessRequirement

    public init(credentials: ServerCredentials, requirement: @escaping @Sendable (MethodDescriptor) -> AccessRequirement) {
        self.credentials = credentials
        self.requirement = requirement
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        try credentials.check(requirement(context.descriptor), metadata: request.metadata, context: context)
        return try await next(request, context)
    }
}
