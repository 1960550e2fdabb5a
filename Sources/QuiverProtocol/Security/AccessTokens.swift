import Foundation
import GRPCCore

/// What a client token may do. Each role includes the ones below it.
public enum AccessRole: Int, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    /// Search, describe, list, status, load progress.
    case read = 1
    /// Create, train, load, drop collections.
    case write = 2
    /// Cluster membership: re-address or remove workers.
    case admin = 3

    public static func < (lhs: AccessRole, rhs: AccessRole) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .read: "read"
        case .write: "write"
        case .admin: "admin"
        }
    }

    init?(name: String) {
        guard let role = Self.allCases.first(where: { $0.description == name }) else { return nil }
        self = role
    }
}

/// A credential file that cannot be used, with what to fix.
public struct CredentialError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The bearer tokens a coordinator accepts, read from a file (never from a server's command
/// line, where every local user can read it). One token per line:
///
///     # role   name     token
///     admin    ops      3c9a…        (at least 16 characters of [A-Za-z0-9._~+/=-])
///     write    loader   …
///     read     web      …
///
/// The name is what logs and errors show; a token is never printed.
public struct AccessTokens: Sendable {
    public struct Entry: Sendable {
        public let role: AccessRole
        public let name: String
        fileprivate let token: [UInt8]
    }

    public let entries: [Entry]

    public static let minimumTokenLength = 16

    public init(entries: [(role: AccessRole, name: String, token: String)]) throws(CredentialError) {
        var seen = Set<String>()
        var parsed: [Entry] = []
        for (index, entry) in entries.enumerated() {
            try Self.check(token: entry.token, where: "token \(index + 1) (\(entry.name))")
            guard seen.insert(entry.token).inserted else {
                throw CredentialError("token \(index + 1) (\(entry.name)) repeats an earlier token; every token must be unique")
            }
            parsed.append(Entry(role: entry.role, name: entry.name, token: Array(entry.token.utf8)))
        }
        self.entries = parsed
    }

    /// Reads a tokens file (format above).
    public static func load(path: String) throws(CredentialError) -> AccessTokens {
        let text = try readCredentialFile(path, what: "tokens file")
        var entries: [(role: AccessRole, name: String, token: String)] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count == 3 else {
                throw CredentialError("\(path) line \(number + 1): expected three fields \"ROLE NAME TOKEN\", found \(fields.count)")
            }
            guard let role = AccessRole(name: String(fields[0])) else {
                throw CredentialError("\(path) line \(number + 1): role must be read, write or admin, got \"\(fields[0].prefix(16))\"")
            }
            entries.append((role, String(fields[1]), String(fields[2])))
        }
        guard !entries.isEmpty else { throw CredentialError("\(path) holds no tokens; add lines \"ROLE NAME TOKEN\"") }
        do {
            return try AccessTokens(entries: entries)
        } catch {
            throw CredentialError("\(path): \(error.description)")
        }
    }

    /// The entry whose token this is, compared in time independent of where they differ.
    public func entry(forToken token: String) -> Entry? {
        let presented = Array(token.utf8)
        var found: Entry?
        for entry in entries where constantTimeEqual(entry.token, presented) { found = entry }
        return found
    }

    static func check(token: String, where place: String) throws(CredentialError) {
        guard token.utf8.count >= minimumTokenLength else {
            throw CredentialError("\(place) is \(token.utf8.count) characters; tokens need at least \(minimumTokenLength)")
        }
        let allowed = token.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || "._~+/=-".utf8.contains(byte)
        }
        guard allowed else { throw CredentialError("\(place) holds characters outside [A-Za-z0-9._~+/=-]") }
    }
}

/// The shared secret of the internal hop: workers present it to register with the coordinator,
/// and the coordinator presents it on every call to a worker (on top of mutual TLS, or alone when
/// the cluster runs without TLS).
public struct JoinToken: Sendable {
    fileprivate let token: [UInt8]
    public var value: String { String(decoding: token, as: UTF8.self) }

    public init(_ token: String) throws(CredentialError) {
        try AccessTokens.check(token: token, where: "the join token")
        self.token = Array(token.utf8)
    }

    /// Reads a file holding the token (surrounding whitespace ignored).
    public static func load(path: String) throws(CredentialError) -> JoinToken {
        let text = try readCredentialFile(path, what: "join token file")
        do {
            return try JoinToken(text.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            throw CredentialError("\(path): \(error.description)")
        }
    }

    public func matches(_ presented: String) -> Bool { constantTimeEqual(token, Array(presented.utf8)) }
}

/// The bearer token of a request (`authorization: Bearer <token>`), if it carries one.
public func bearerToken(in metadata: Metadata) -> String? {
    for value in metadata[stringValues: "authorization"] {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        if trimmed.count > 7, trimmed.prefix(7).lowercased() == "bearer " {
            return String(trimmed.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
    }
    return nil
}

extension Metadata {
    /// Metadata carrying `token` as a bearer credential.
    public static func bearer(_ token: String?) -> Metadata {
        guard let token else { return [:] }
        return ["authorization": "Bearer \(token)"]
    }
}

private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
    for index in 0 ..< max(a.count, b.count) {
        let x = index < a.count ? a[index] : 0
        let y = index < b.count ? b[index] : 0
        difference |= x ^ y
    }
    return difference == 0
}

private func readCredentialFile(_ path: String, what: String) throws(CredentialError) -> String {
    var info = stat()
    guard stat(path, &info) == 0 else { throw CredentialError("cannot read the \(what) \(path): \(String(cString: strerror(errno)))") }
    guard (info.st_mode & S_IFMT) == S_IFREG else { throw CredentialError("the \(what) \(path) is not a regular file") }
    guard info.st_size <= 1 << 20 else { throw CredentialError("the \(what) \(path) is larger than 1 MiB") }
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        throw CredentialError("cannot read the \(what) \(path) as UTF-8 text")
    }
    return text
}
