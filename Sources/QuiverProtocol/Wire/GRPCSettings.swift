import GRPCCore

/// gRPC settings every Quiver process uses, so that a batch that fits one side fits the other.
public enum QuiverGRPC {
    /// Largest message accepted or sent on every hop (client ↔ coordinator ↔ worker): batches of
    /// vectors and results are far above gRPC's 4 MiB default (10k queries × 384 floats is
    /// 15 MiB), and a request whose answer would not fit is refused up front, naming this limit.
    public static let maxMessageBytes = 64 << 20

    /// The longest a search may run, whatever deadline its caller sent (or none).
    public static let maxSearchTime: Duration = .seconds(600)

    /// Client service config raising the message limits for every method.
    public static var serviceConfig: ServiceConfig {
        ServiceConfig(methodConfig: [
            MethodConfig(names: [MethodConfig.Name(service: "")],
                         maxRequestMessageBytes: maxMessageBytes, maxResponseMessageBytes: maxMessageBytes),
        ])
    }
}

/// "host:port" parsing shared by every command that dials or listens.
public struct HostAndPort: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (IPv6 hosts in brackets: `[::1]:7000`); the port may be 0 for listening.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0 ... 65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses one or more comma-separated addresses; nil if any is not `host:port`.
    public static func list(_ text: String) -> [HostAndPort]? {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let addresses = parts.compactMap(HostAndPort.init)
        return addresses.isEmpty || addresses.count != parts.count ? nil : addresses
    }
}
