import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import QuiverProtocol
import Synchronization

/// A connection to a Quiver coordinator: collections, training, loading, search and status, in
/// plain Swift types. The `quiver` command line is built on it.
///
/// ```swift
/// try await QuiverClient.withConnection(to: HostAndPort("127.0.0.1:7000")!) { client in
///     let hits = try await client.search("docs", queries: vectors, dimension: 384, k: 10)
/// }
/// ```
public struct QuiverClient: Sendable {
    let coordinator: Quiver_V1_Coordinator.Client<HTTP2ClientTransport.Posix>
    /// Searches travel as messages on one SearchStream, opened on the first search…
    let searches: CallStream<Quiver_V1_SearchStreamRequest, Quiver_V1_SearchStreamResponse>
    /// …or, when the coordinators' framed search ports are known, as frames on long-lived
    /// connections to them (taken in turn; a search whose port fails goes over gRPC).
    let framedSearches: [FramedCallClient<Quiver_V1_SearchStreamRequest, Quiver_V1_SearchStreamResponse>]
    private let framedTurn = FramedTurn()
    /// Deadline applied to every call that has none of its own.
    public var timeout: Duration
    /// Sent with every call: the bearer token, when the client has one.
    let metadata: Metadata

    init(grpc: GRPCClient<HTTP2ClientTransport.Posix>, timeout: Duration, token: String?,
         framedSearches: [FramedCallClient<Quiver_V1_SearchStreamRequest, Quiver_V1_SearchStreamResponse>] = []) {
        self.framedSearches = framedSearches
        let coordinator = Quiver_V1_Coordinator.Client(wrapping: grpc)
        self.coordinator = coordinator
        metadata = .bearer(token)
        searches = CallStream(metadata: metadata) { request, onResponse in
            var options = CallOptions.defaults
            options.timeout = nil  // the stream lives as long as the connection; each search has its own limit
            try await coordinator.searchStream(request: request, options: options, onResponse: onResponse)
        }
        self.timeout = timeout
    }

    /// Connects, runs `body`, then closes the connection. `token` is sent as a bearer credential
    /// on every call; `security` says how the coordinator's certificate is checked.
    /// `searchAddresses` are coordinators' framed search ports (`--search-listen`): searches
    /// then go there, as frames, at a fraction of a gRPC message's cost.
    ///
    /// `body` runs on the connection's event loops (an answer resumes it with no thread
    /// hand-off), so it must not block: a loop held for seconds holds every call on it and
    /// leaves its keepalive pings unanswered. Run blocking work (disk, long computations)
    /// elsewhere, e.g. in a `Task.detached` awaited from `body`.
    public static func withConnection<Result: Sendable>(
        to address: HostAndPort, timeout: Duration = .seconds(600), security: ClientSecurity = .plaintext,
        token: String? = nil, searchAddresses: [HostAndPort] = [], _ body: (QuiverClient) async throws -> Result
    ) async throws -> Result {
        try await withConnection(to: [address], timeout: timeout, security: security, token: token, searchAddresses: searchAddresses, body)
    }

    /// The same with a coordinator's standbys beside it: calls are spread over those that
    /// answer, and a change a standby refuses is sent again to the next (see `call`).
    public static func withConnection<Result: Sendable>(
        to addresses: [HostAndPort], timeout: Duration = .seconds(600), security: ClientSecurity = .plaintext,
        token: String? = nil, searchAddresses: [HostAndPort] = [], _ body: (QuiverClient) async throws -> Result
    ) async throws -> Result {
        let transport = try QuiverTransport.client(to: addresses, security: security)
        // Concurrent searches spread over a connection per event loop (see `spillMargin`),
        // and each task stays on the loop that answered it.
        var settings = FramedClientSettings()
        settings.spillMargin = searchSpillMargin
        let framed = try searchAddresses.map { address in
            try FramedCallClient<Quiver_V1_SearchStreamRequest, Quiver_V1_SearchStreamResponse>(
                address: address, method: FramedMethod.search, security: security, token: token, settings: settings)
        }
        defer { framed.forEach { $0.close() } }
        return try await withTaskExecutorPreference(LoopFollowingExecutor()) {
            try await withGRPCClient(transport: transport) { grpc in
                let client = QuiverClient(grpc: grpc, timeout: timeout, token: token, framedSearches: framed)
                defer { client.searches.close() }
                return try await body(client)
            }
        }
    }

    /// How many more searches one loop's connection carries than another's before a search
    /// takes the other (`FramedClientSettings.spillMargin`).
    static let searchSpillMargin = 2

    /// The framed search port a search goes to next, if there are any.
    var nextFramedSearches: FramedCallClient<Quiver_V1_SearchStreamRequest, Quiver_V1_SearchStreamResponse>? {
        guard !framedSearches.isEmpty else { return nil }
        return framedSearches[framedTurn.next() % framedSearches.count]
    }

    var options: CallOptions {
        var options = CallOptions.defaults
        options.timeout = timeout
        return options
    }

    /// Runs a call, turning gRPC failures into `QuiverClientError`. A call that never ran — a
    /// coordinator standing by refused a change, or no coordinator was reachable while a
    /// standby takes over — is sent again (in turn to the next coordinator) for up to 8 s.
    func call<Result>(_ body: () async throws -> Result) async throws(QuiverClientError) -> Result {
        var delay = Duration.milliseconds(100)
        let until = ContinuousClock.now + .seconds(8)
        while true {
            do {
                return try await body()
            } catch let error as RPCError where error.code == .unavailable && Self.neverRan(error.message) && ContinuousClock.now + delay < until {
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
            } catch {
                throw Self.clientError(error)
            }
        }
    }

    /// Refusals that show a call did nothing: safe to send again.
    static func neverRan(_ message: String) -> Bool {
        message.contains("stands by") || message.contains("transient failure state")
    }

    static func clientError(_ error: any Error) -> QuiverClientError {
        do {
            throw error
        } catch let error as RPCError {
            return QuiverClientError(code: error.code, message: error.message)
        } catch let error as QuiverClientError {
            return error
        } catch {
            return QuiverClientError(code: .unknown, message: "\(error)")
        }
    }
}

/// A failed call: the gRPC status code and the server's message.
public struct QuiverClientError: Error, CustomStringConvertible, Sendable {
    public let code: RPCError.Code
    public let message: String

    public init(code: RPCError.Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// Takes the framed search ports in turn.
final class FramedTurn: Sendable {
    private let counter = Atomic<Int>(0)
    func next() -> Int { counter.add(1, ordering: .relaxed).oldValue & Int.max }
}
