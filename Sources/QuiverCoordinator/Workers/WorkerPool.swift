import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import QuiverCluster
import QuiverProtocol
import Synchronization

/// The workers the coordinator knows: one gRPC client per worker, and the health the
/// coordinator judges from heartbeats and call outcomes. Health decides routing: searches skip
/// workers marked down and go to replicas instead.
final class WorkerPool: Sendable {
    typealias Client = Quiver_V1_Worker.Client<HTTP2ClientTransport.Posix>
    typealias SearchStream = CallStream<Quiver_V1_SearchListsStreamRequest, Quiver_V1_SearchListsStreamResponse>
    typealias FramedSearches = FramedCallClient<Quiver_V1_SearchListsStreamRequest, Quiver_V1_SearchListsStreamResponse>

    /// Where a search to one worker goes: its framed port when it offers one, else gRPC.
    struct SearchRoute: Sendable {
        var grpc: SearchStream
        var framed: FramedSearches?
        /// Searches sent over gRPC because the framed port failed them.
        var framedFallbacks = 0
    }

    struct Member: Sendable {
        var endpoint: WorkerEndpoint
        var client: Client
        var grpc: GRPCClient<HTTP2ClientTransport.Posix>
        /// Searches travel as messages on one long-lived SearchListsStream.
        var searches: SearchStream
        /// The worker's framed search port (learned from its Stats), when it has one and the
        /// coordinator uses them: searches go there instead.
        var framed: FramedSearches?
        /// Searches sent over gRPC because the framed port failed them.
        var framedFallbacks = 0
        var health: Quiver_V1_WorkerHealth = .suspect
        /// When it was last marked down (nil while it is not).
        var downSince: ContinuousClock.Instant?
        var consecutiveFailures = 0
        var lastSeenUnixMs: Int64 = 0
        var stats: Quiver_V1_WorkerStatsResponse?
        /// It answered from another data folder than the one it held lists in: kept out of
        /// searches (its lists may be empty) until upkeep has marked them behind.
        var folderReplaced = false
    }

    private let members = Mutex<[WorkerID: Member]>([:])
    private let logger: Logger
    private let security: ClientSecurity
    private let joinToken: JoinToken?
    private let searchTransport: WorkerSearchTransport
    /// The join token, which workers require when they are given one.
    private let baseMetadata: Metadata
    /// The leadership's epoch (its etcd revision) once this coordinator leads through etcd.
    private let epoch = Atomic<Int64>(0)
    /// Sent on every call to a worker: the join token, and the leadership's epoch if any.
    var callMetadata: Metadata {
        var metadata = baseMetadata
        let epoch = epoch.load(ordering: .relaxed)
        if epoch > 0 { metadata.addString(String(epoch), forKey: LeaderEpochInterceptor.header) }
        return metadata
    }

    /// From now on calls carry this leadership's epoch; workers then refuse older leaders'.
    func lead(epoch: Int64) {
        self.epoch.store(epoch, ordering: .relaxed)
    }

    init(logger: Logger, security: ClientSecurity = .plaintext, joinToken: JoinToken? = nil,
         searchTransport: WorkerSearchTransport = .framed) {
        self.logger = logger
        self.security = security
        self.joinToken = joinToken
        self.searchTransport = searchTransport
        baseMetadata = .bearer(joinToken?.value)
    }

    /// Adds (or re-addresses) a worker and starts its connection; returns false when it was
    /// already known at the same address.
    @discardableResult
    func add(_ endpoint: WorkerEndpoint) throws(CoordinatorError) -> Bool {
        var endpoint = endpoint
        if let known = members.withLock({ $0[endpoint.id] }) {
            if known.endpoint.address == endpoint.address { return false }
            endpoint.folderID = endpoint.folderID ?? known.endpoint.folderID
            endpoint.draining = endpoint.draining ?? known.endpoint.draining
        }
        guard let address = HostAndPort(endpoint.address), address.port > 0 else {
            throw .invalidArgument("worker address \"\(endpoint.address)\" is not host:port")
        }
        let transport: HTTP2ClientTransport.Posix
        do {
            transport = try QuiverTransport.client(to: address, security: security)
        } catch {
            throw .invalidArgument("cannot dial worker \(endpoint.address): \(error)")
        }
        let grpc = GRPCClient(transport: transport)
        Task(executorPreference: EventLoopExecutor()) { [logger] in
            do {
                try await grpc.runConnections()
            } catch {
                logger.warning("connections to worker \(endpoint.id) ended: \(error)")
            }
        }
        let client = Client(wrapping: grpc)
        let searches = SearchStream(metadata: callMetadata) { request, onResponse in
            try await client.searchListsStream(request: request, options: .worker(), onResponse: onResponse)
        }
        let replaced = members.withLock { members in
            let old = members[endpoint.id]
            members[endpoint.id] = Member(endpoint: endpoint, client: client, grpc: grpc, searches: searches)
            return old
        }
        replaced?.searches.close()
        replaced?.framed?.close()
        replaced?.grpc.beginGracefulShutdown()
        return true
    }

    /// Follows the framed search address a worker's Stats announce: opens a client for a new
    /// one, closes the client of one that went away or moved.
    private func follow(searchAddress announced: String, of worker: WorkerID) {
        guard searchTransport == .framed else { return }
        let current = members.withLock { $0[worker]?.framed }
        let wanted = HostAndPort(announced).flatMap { $0.port > 0 ? $0 : nil }
        if current?.address == wanted { return }
        var framed: FramedSearches?
        if let wanted {
            do {
                framed = try FramedSearches(address: wanted, method: FramedMethod.searchLists, security: security, token: joinToken?.value)
            } catch {
                logger.warning("worker \(worker) offers framed searches on \(wanted), which cannot be dialled (\(error)); searching it over gRPC")
            }
        }
        let (known, old) = members.withLock { members -> (Bool, FramedSearches?) in
            guard members[worker] != nil else { return (false, nil) }
            let old = members[worker]!.framed
            members[worker]!.framed = framed
            return (true, old)
        }
        old?.close()
        guard known else {
            framed?.close()
            return
        }
        if let framed { logger.info("searching worker \(worker) over its framed port \(framed.address)") }
    }

    var endpoints: [WorkerEndpoint] {
        members.withLock { $0.values.map(\.endpoint) }.sorted { $0.id < $1.id }
    }

    var ids: [WorkerID] { endpoints.map(\.id) }

    /// Counts a search the framed port failed and gRPC was asked instead; logs the first and
    /// every thousandth, so an outage does not flood the log.
    func noteFramedFallback(_ worker: WorkerID, _ error: RPCError) {
        let count = members.withLock { members -> Int in
            members[worker]?.framedFallbacks += 1
            return members[worker]?.framedFallbacks ?? 0
        }
        if count == 1 || count % 1000 == 0 {
            logger.warning("framed search to worker \(worker) failed (\(error.message)); asked it over gRPC instead (\(count) times so far)")
        }
    }

    func searchRoute(_ worker: WorkerID) throws(CoordinatorError) -> SearchRoute {
        guard let route = members.withLock({ $0[worker].map { SearchRoute(grpc: $0.searches, framed: $0.framed) } }) else {
            throw .unavailable("worker \(worker) is in the shard map but not registered with this coordinator")
        }
        return route
    }

    func client(_ worker: WorkerID) throws(CoordinatorError) -> Client {
        guard let client = members.withLock({ $0[worker]?.client }) else {
            throw .unavailable("worker \(worker) is in the shard map but not registered with this coordinator")
        }
        return client
    }

    /// Forgets a worker and closes its connection.
    func remove(_ worker: WorkerID) {
        let removed = members.withLock { $0.removeValue(forKey: worker) }
        removed?.searches.close()
        removed?.framed?.close()
        removed?.grpc.beginGracefulShutdown()
    }

    /// Workers new lists may be placed on: all but those marked down (a worker that does not
    /// answer, or a registration whose address leads nowhere, must not make training fail).
    var placeable: [WorkerID] {
        members.withLock { $0.values.filter { $0.health != .down }.map(\.endpoint.id) }.sorted()
    }

    /// Workers that have been down for longer than `grace`, by id.
    func downLongerThan(_ grace: Duration) -> [WorkerID] {
        let now = ContinuousClock.now
        return members.withLock { members in
            members.values.filter { $0.downSince.map { now - $0 > grace } ?? false }.map(\.endpoint.id)
        }.sorted()
    }

    func setFolderID(_ folderID: String, of worker: WorkerID) {
        members.withLock { $0[worker]?.endpoint.folderID = folderID }
    }

    func setDraining(_ draining: Bool, _ worker: WorkerID) {
        members.withLock { $0[worker]?.endpoint.draining = draining ? true : nil }
    }

    func isDraining(_ worker: WorkerID) -> Bool {
        members.withLock { $0[worker]?.endpoint.draining == true }
    }

    /// Workers not to route searches to.
    var down: Set<WorkerID> {
        Set(members.withLock { $0.values.filter { $0.health == .down || $0.folderReplaced }.map(\.endpoint.id) })
    }

    /// Takes the folder ids the leader recorded (a coordinator standing by): a worker is kept
    /// out of searches only while its folder is not the recorded one.
    func adoptFolderIDs(_ endpoints: [WorkerEndpoint]) {
        members.withLock { members in
            for endpoint in endpoints {
                guard var member = members[endpoint.id], let folder = endpoint.folderID else { continue }
                member.endpoint.folderID = folder
                let answered = member.stats?.folderID ?? ""
                member.folderReplaced = !answered.isEmpty && answered != folder
                if !member.folderReplaced && member.health == .suspect && member.consecutiveFailures == 0 { member.health = .healthy }
                members[endpoint.id] = member
            }
        }
    }

    /// Upkeep has marked a replaced folder's lists behind: the worker may serve what it repairs.
    func clearFolderReplaced(_ worker: WorkerID) {
        members.withLock { $0[worker]?.folderReplaced = false }
    }

    func snapshot() -> [Member] {
        members.withLock { Array($0.values) }.sorted { $0.endpoint.id < $1.endpoint.id }
    }

    func recordSuccess(_ worker: WorkerID, stats: Quiver_V1_WorkerStatsResponse? = nil) {
        members.withLock { members in
            guard members[worker] != nil else { return }
            if let stats, let known = members[worker]!.endpoint.folderID, !stats.folderID.isEmpty, known != stats.folderID {
                members[worker]!.folderReplaced = true
            }
            members[worker]!.health = members[worker]!.folderReplaced ? .suspect : .healthy
            members[worker]!.downSince = nil
            members[worker]!.consecutiveFailures = 0
            members[worker]!.lastSeenUnixMs = unixMilliseconds()
            if let stats { members[worker]!.stats = stats }
        }
        if let stats { follow(searchAddress: stats.searchAddress, of: worker) }
    }

    /// A failed call or heartbeat. A worker that refuses connections (UNAVAILABLE) is marked
    /// down at once so the next search does not wait on it again; slow answers (a worker busy
    /// encoding a load can miss a heartbeat) only make it suspect until three fail in a row.
    /// The heartbeat brings a recovered worker back.
    func recordFailure(_ worker: WorkerID, _ error: any Error) {
        let unreachable = (error as? RPCError)?.code == .unavailable
        let (changed, health) = members.withLock { members -> (Bool, Quiver_V1_WorkerHealth) in
            guard var member = members[worker] else { return (false, .unspecified) }
            let before = member.health
            member.consecutiveFailures += 1
            member.health = unreachable || member.consecutiveFailures >= 3 ? .down : .suspect
            if member.health == .down && member.downSince == nil { member.downSince = .now }
            members[worker] = member
            return (before != member.health, member.health)
        }
        if changed { logger.warning("worker \(worker) is \(health == .down ? "down" : "suspect"): \(error)") }
    }

    /// Polls every worker's Stats: the health signal, and the numbers ClusterStatus reports.
    func heartbeat() async {
        await withTaskGroup(of: Void.self) { group in
            for member in snapshot() {
                group.addTask {
                    do {
                        var options = CallOptions.worker(timeout: .seconds(2))
                        options.waitForReady = false
                        let stats = try await member.client.stats(Quiver_V1_WorkerStatsRequest(), metadata: self.callMetadata, options: options)
                        self.recordSuccess(member.endpoint.id, stats: stats)
                    } catch {
                        self.recordFailure(member.endpoint.id, error)
                    }
                }
            }
        }
    }

    /// One worker's Stats asked for now (also recorded as its latest heartbeat).
    func freshStats(of worker: WorkerID) async throws(CoordinatorError) -> Quiver_V1_WorkerStatsResponse {
        let metadata = callMetadata
        let stats = try await call(worker, "stats", timeout: .seconds(5)) { client, options in
            try await client.stats(Quiver_V1_WorkerStatsRequest(), metadata: metadata, options: options)
        }
        recordSuccess(worker, stats: stats)
        return stats
    }

    func shutdown() {
        for member in snapshot() {
            member.searches.close()
            member.framed?.close()
            member.grpc.beginGracefulShutdown()
        }
    }
}

/// How the coordinator sends searches to workers.
public enum WorkerSearchTransport: String, Sendable, CaseIterable {
    /// Over a worker's framed search port when its Stats announce one, else gRPC.
    case framed
    /// Always over gRPC (the SearchListsStream call), e.g. to compare the two.
    case grpc
}

extension CallOptions {
    /// Options for calls to workers: large messages both ways, and an optional time limit.
    static func worker(timeout: Duration? = nil) -> CallOptions {
        var options = CallOptions.defaults
        options.maxRequestMessageBytes = QuiverGRPC.maxMessageBytes
        options.maxResponseMessageBytes = QuiverGRPC.maxMessageBytes
        options.timeout = timeout
        return options
    }
}
