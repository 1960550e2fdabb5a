import Foundation
import QuiverProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A small etcd v3 client over etcd's JSON gateway (`POST /v3/kv/range`, `/v3/kv/txn`,
/// `/v3/lease/…` on the client port, HTTP/1.1, keys and values in base64). Calls block the
/// calling thread for at most `timeout`; every reply is read to its end or refused.
///
/// Plain HTTP only: run etcd on the coordinators' own hosts or a private network (etcd's
/// client TLS is not spoken here).
public final class EtcdClient: Sendable {
    public let endpoints: [HostAndPort]
    let timeout: Duration
    /// The endpoint that answered last (tried first).
    private let preferred = Atomic<Int>(0)
    /// The most a reply may hold.
    static let replyLimit = 256 << 20

    /// `urls`: "http://HOST:PORT" (or "HOST:PORT"), comma-separated members of one etcd cluster.
    public init(urls: String, timeout: Duration = .seconds(5)) throws(CoordinatorError) {
        var endpoints: [HostAndPort] = []
        for part in urls.split(separator: ",") {
            var text = part.trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("https://") {
                throw .invalidArgument("etcd endpoint \(text): https is not supported; give an http:// URL of a member on a private network")
            }
            if text.hasPrefix("http://") { text.removeFirst("http://".count) }
            while text.hasSuffix("/") { text.removeLast() }
            guard let endpoint = HostAndPort(text), endpoint.port > 0 else {
                throw .invalidArgument("etcd endpoint '\(part)' is not http://HOST:PORT")
            }
            endpoints.append(endpoint)
        }
        guard !endpoints.isEmpty else { throw .invalidArgument("no etcd endpoint given") }
        self.endpoints = endpoints
        self.timeout = timeout
    }

    /// One gateway call: `body` as JSON in, the reply's JSON object out. Members are tried in
    /// turn, each for at most `timeout`; with `within`, the whole call ends within that time,
    /// which is shared among the members not yet tried, so one that holds the call (frozen,
    /// or dropping packets) leaves time for the next.
    func call(_ path: String, _ body: [String: Any], within budget: Duration? = nil) throws(CoordinatorError) -> [String: Any] {
        let payload: Data
        do {
            payload = try JSONSerialization.data(withJSONObject: body)
        } catch {
            throw .internalError("cannot encode an etcd request: \(error)")
        }
        var failures: [String] = []
        let first = preferred.load(ordering: .relaxed)
        let started = ContinuousClock.now
        for offset in 0 ..< endpoints.count {
            let index = (first + offset) % endpoints.count
            let endpoint = endpoints[index]
            var attemptTimeout = timeout
            if let budget {
                let share = (budget - started.duration(to: .now)) / (endpoints.count - offset)
                guard share >= .milliseconds(1) else {
                    failures.append("\(endpoints.count - offset) member(s) not tried: the call's \(budget) ran out")
                    break
                }
                attemptTimeout = min(timeout, share)
            }
            let reply: (status: Int, body: [UInt8])
            do {
                reply = try HTTPExchange.post(endpoint, path: path, body: [UInt8](payload), timeout: attemptTimeout, limit: Self.replyLimit)
            } catch {
                failures.append("\(endpoint): \(error.reason)")
                continue
            }
            preferred.store(index, ordering: .relaxed)
            guard let object = (try? JSONSerialization.jsonObject(with: Data(reply.body))) as? [String: Any] else {
                throw .unavailable("etcd at \(endpoint) answered \(path) with HTTP \(reply.status) and no JSON object")
            }
            guard reply.status == 200 else {
                let message = object["message"] as? String ?? object["error"] as? String ?? "HTTP \(reply.status)"
                throw .unavailable("etcd at \(endpoint) refused \(path): \(message)")
            }
            return object
        }
        throw .unavailable("no etcd endpoint answered (\(failures.joined(separator: "; ")))")
    }

    // MARK: - Requests

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// The first key after every key starting with `prefix`.
    static func rangeEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return String(decoding: bytes, as: UTF8.self)
            }
            bytes.removeLast()
        }
        return "\0"
    }

    struct KeyValue {
        var key: String
        var value: [UInt8]
        var createRevision: Int64
        var lease: Int64
    }

    static func int64(_ value: Any?) -> Int64 {
        if let text = value as? String { return Int64(text) ?? 0 }
        if let number = value as? NSNumber { return number.int64Value }
        return 0
    }

    static func keyValues(_ reply: [String: Any]) -> [KeyValue] {
        ((reply["kvs"] as? [[String: Any]]) ?? []).map { kv in
            KeyValue(key: (kv["key"] as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } ?? "",
                     value: (kv["value"] as? String).flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) } ?? [],
                     createRevision: int64(kv["create_revision"]), lease: int64(kv["lease"]))
        }
    }

    static func revision(_ reply: [String: Any]) -> Int64 {
        int64((reply["header"] as? [String: Any])?["revision"])
    }

    /// The key, or every key below a prefix (`prefix: true`), in key order.
    func range(_ key: String, prefix: Bool = false, keysOnly: Bool = false) throws(CoordinatorError) -> [KeyValue] {
        var body: [String: Any] = ["key": Self.base64(key)]
        if prefix { body["range_end"] = Self.base64(Self.rangeEnd(key)) }
        if keysOnly { body["keys_only"] = true }
        return Self.keyValues(try call("/v3/kv/range", body))
    }

    static func put(_ key: String, _ value: [UInt8], lease: Int64? = nil) -> [String: Any] {
        var put: [String: Any] = ["key": base64(key), "value": base64(value)]
        if let lease { put["lease"] = String(lease) }
        return ["request_put": put]
    }

    static func delete(_ key: String, prefix: Bool = false) -> [String: Any] {
        var delete: [String: Any] = ["key": base64(key)]
        if prefix { delete["range_end"] = base64(rangeEnd(key)) }
        return ["request_delete_range": delete]
    }

    static func createRevision(of key: String, is revision: Int64) -> [String: Any] {
        ["target": "CREATE", "result": "EQUAL", "key": base64(key), "create_revision": String(revision)]
    }

    /// A transaction; whether its comparisons held (and so `success` ran), and the reply.
    func transaction(compare: [[String: Any]], success: [[String: Any]],
                     failure: [[String: Any]] = []) throws(CoordinatorError) -> (succeeded: Bool, reply: [String: Any]) {
        let reply = try call("/v3/kv/txn", ["compare": compare, "success": success, "failure": failure])
        return ((reply["succeeded"] as? Bool) ?? false, reply)
    }

    func grantLease(ttl: Int) throws(CoordinatorError) -> Int64 {
        let id = Self.int64(try call("/v3/lease/grant", ["TTL": String(ttl)])["ID"])
        guard id != 0 else { throw .unavailable("etcd granted no lease") }
        return id
    }

    /// Renews a lease (within `budget`, when given); its remaining TTL (0: the lease is gone).
    func keepAlive(_ lease: Int64, within budget: Duration? = nil) throws(CoordinatorError) -> Int64 {
        let reply = try call("/v3/lease/keepalive", ["ID": String(lease)], within: budget)
        let result = reply["result"] as? [String: Any] ?? reply
        return Self.int64(result["TTL"])
    }

    func revoke(_ lease: Int64) throws(CoordinatorError) {
        _ = try call("/v3/lease/revoke", ["ID": String(lease)])
    }
}

/// One HTTP/1.1 POST on a fresh connection (`Connection: close`), connect, send and receive
/// ending within one deadline (name resolution aside), and the reply (Content-Length, chunked,
/// or to the close) bounded.
enum HTTPExchange {
    struct Failure: Error {
        let reason: String
    }

    static func post(_ endpoint: HostAndPort, path: String, body: [UInt8], timeout: Duration,
                     limit: Int) throws(Failure) -> (status: Int, body: [UInt8]) {
        // The whole exchange, not each step of it, ends within `timeout`: a server that
        // trickles its reply cannot stretch a call that a lease's renewal is timed against.
        let deadline = ContinuousClock.now + timeout
        let socket = try connect(endpoint, deadline: deadline, timeout: timeout)
        defer { close(socket) }
        let head = "POST \(path) HTTP/1.1\r\nHost: \(endpoint)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        try send(socket, Array(head.utf8) + body, deadline: deadline, timeout: timeout)
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            guard setTimeout(socket, SO_RCVTIMEO, until: deadline) else { throw Failure(reason: "no complete reply within \(timeout)") }
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(reason: errno == EAGAIN || errno == EWOULDBLOCK ? "no reply within \(timeout)" : String(cString: strerror(errno)))
            }
            reply += chunk[..<count]
            guard reply.count <= limit else { throw Failure(reason: "reply larger than \(limit) bytes") }
        }
        return try parse(reply)
    }

    /// Sets a socket timeout (`SO_RCVTIMEO`, `SO_SNDTIMEO`) to what is left until `deadline`;
    /// false once nothing is left. (A zero timeval would mean no timeout at all.)
    private static func setTimeout(_ socket: Int32, _ option: Int32, until deadline: ContinuousClock.Instant) -> Bool {
        let left = ContinuousClock.now.duration(to: deadline)
        guard left > .zero else { return false }
        var wait = timeval(tv_sec: Int(left.components.seconds), tv_usec: Int(left.components.attoseconds / 1_000_000_000_000))
        if wait.tv_sec == 0 && wait.tv_usec == 0 { wait.tv_usec = 1 }
        setsockopt(socket, SOL_SOCKET, option, &wait, socklen_t(MemoryLayout<timeval>.size))
        return true
    }

    private static func connect(_ endpoint: HostAndPort, deadline: ContinuousClock.Instant, timeout: Duration) throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list) == 0, let first = list else {
            throw Failure(reason: "cannot resolve \(endpoint.host)")
        }
        defer { freeaddrinfo(list) }
        let socket = Glibc.socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(reason: String(cString: strerror(errno))) }
        // Non-blocking connect, so an address that drops packets costs what is left of the
        // deadline, not minutes.
        let flags = fcntl(socket, F_GETFL)
        _ = fcntl(socket, F_SETFL, flags | O_NONBLOCK)
        if Glibc.connect(socket, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else {
                let reason = String(cString: strerror(errno))
                close(socket)
                throw Failure(reason: reason)
            }
            var poller = pollfd(fd: socket, events: Int16(POLLOUT), revents: 0)
            // Rounded up: a wait shorter than a millisecond must not become poll's "at once".
            let left = max(.zero, ContinuousClock.now.duration(to: deadline))
            let milliseconds = Int32(left.components.seconds * 1000 + (left.components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard poll(&poller, 1, milliseconds) == 1, getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else {
                close(socket)
                throw Failure(reason: error != 0 ? String(cString: strerror(error)) : "no connection within \(timeout)")
            }
        }
        _ = fcntl(socket, F_SETFL, flags)
        return socket
    }

    private static func send(_ socket: Int32, _ bytes: [UInt8], deadline: ContinuousClock.Instant, timeout: Duration) throws(Failure) {
        var sent = 0
        while sent < bytes.count {
            guard setTimeout(socket, SO_SNDTIMEO, until: deadline) else { throw Failure(reason: "request not sent within \(timeout)") }
            let count = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(reason: errno == EAGAIN || errno == EWOULDBLOCK ? "request not sent within \(timeout)" : String(cString: strerror(errno)))
            }
            sent += count
        }
    }

    static func parse(_ reply: [UInt8]) throws(Failure) -> (status: Int, body: [UInt8]) {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = reply.firstRange(of: separator) else { throw Failure(reason: "reply without a complete header") }
        let head = String(decoding: reply[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw Failure(reason: "not an HTTP reply")
        }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let rest = Array(reply[end.upperBound...])
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            return (status, try dechunk(rest))
        }
        if let length = headers["content-length"].flatMap(Int.init) {
            guard rest.count >= length else { throw Failure(reason: "reply cut short (\(rest.count) of \(length) bytes)") }
            return (status, Array(rest[..<length]))
        }
        return (status, rest)
    }

    private static func dechunk(_ bytes: [UInt8]) throws(Failure) -> [UInt8] {
        var out: [UInt8] = []
        var at = 0
        while true {
            guard let lineEnd = bytes[at...].firstRange(of: [13, 10]) else { throw Failure(reason: "chunked reply cut short") }
            let sizeText = String(decoding: bytes[at ..< lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw Failure(reason: "bad chunk size in reply")
            }
            at = lineEnd.upperBound
            if size == 0 { return out }
            guard at + size + 2 <= bytes.count else { throw Failure(reason: "chunked reply cut short") }
            out += bytes[at ..< at + size]
            at += size + 2
        }
    }
}

/// The coordinator's state in etcd, below `prefix` ("/quiver/<cluster>/meta/"). Every change is
/// a transaction that holds only while this coordinator's leadership key still exists with the
/// revision it created it at: once another coordinator leads, a write from this one is refused
/// (and `onFenced` runs) instead of overwriting the new leader's state.
///
/// Values above `chunkLimit` (models) are stored as numbered chunk keys written first, then a
/// small header under the key itself naming them, so a reader never sees half a value.
///
/// Until `lead(_:)` it only reads (a coordinator standing by): every write is refused.
public final class EtcdMetadata: MetadataBackend {
    let client: EtcdClient
    let prefix: String
    private let fence = Mutex<(key: String, revision: Int64)?>(nil)
    let onFenced: @Sendable (String) -> Void
    static let chunkLimit = 1 << 20
    static let chunkMagic = Array("QVCHUNKS1 ".utf8)

    public init(client: EtcdClient, prefix: String, onFenced: @escaping @Sendable (String) -> Void) {
        self.client = client
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.onFenced = onFenced
    }

    public convenience init(client: EtcdClient, prefix: String, leadership: EtcdLeadership, onFenced: @escaping @Sendable (String) -> Void) {
        self.init(client: client, prefix: prefix, onFenced: onFenced)
        lead(leadership)
    }

    /// Writes from now on hold only while `leadership` does.
    public func lead(_ leadership: EtcdLeadership) {
        fence.withLock { $0 = (leadership.key, leadership.revision) }
    }

    public func describe(_ key: String) -> String { "etcd key \(prefix)\(key)" }

    private func fenced(_ operations: [[String: Any]], doing what: String) throws(CoordinatorError) {
        guard let fence = fence.withLock({ $0 }) else {
            throw .unavailable("this coordinator stands by and changes nothing; \(what) is for the leader")
        }
        let (succeeded, _) = try client.transaction(compare: [EtcdClient.createRevision(of: fence.key, is: fence.revision)],
                                                    success: operations)
        guard succeeded else {
            let reason = "this coordinator no longer leads (its leadership key \(fence.key) of revision \(fence.revision) is gone); \(what) was not done"
            onFenced(reason)
            throw .unavailable(reason + "; retry against the coordinator that leads now")
        }
    }

    public func read(_ key: String) throws(CoordinatorError) -> [UInt8]? {
        guard let value = try client.range(prefix + key).first?.value else { return nil }
        guard value.starts(with: Self.chunkMagic) else { return value }
        let fields = String(decoding: value[Self.chunkMagic.count...], as: UTF8.self).split(separator: " ")
        guard fields.count == 3, let count = Int(fields[1]), let total = Int(fields[2]) else {
            throw .internalError("\(describe(key)) has a damaged chunk header")
        }
        let chunks = try client.range(prefix + key + ".chunks/\(fields[0])/", prefix: true)
        let bytes = chunks.flatMap(\.value)
        guard chunks.count == count, bytes.count == total else {
            throw .internalError("\(describe(key)) names \(count) chunks of \(total) bytes, but \(chunks.count) chunks of \(bytes.count) bytes are stored")
        }
        return bytes
    }

    public func write(_ key: String, _ bytes: [UInt8]) throws(CoordinatorError) {
        let full = prefix + key
        guard bytes.count > Self.chunkLimit else {
            try fenced([EtcdClient.put(full, bytes), EtcdClient.delete(full + ".chunks/", prefix: true)], doing: "writing \(key)")
            return
        }
        let nonce = String(UInt64.random(in: 0 ... .max), radix: 16)
        var index = 0
        for start in stride(from: 0, to: bytes.count, by: Self.chunkLimit) {
            let chunk = Array(bytes[start ..< min(bytes.count, start + Self.chunkLimit)])
            try fenced([EtcdClient.put(full + ".chunks/\(nonce)/" + String(format: "%08d", index), chunk)], doing: "writing \(key)")
            index += 1
        }
        try fenced([EtcdClient.put(full, Self.chunkMagic + Array("\(nonce) \(index) \(bytes.count)".utf8))], doing: "writing \(key)")
        // Chunks of earlier values under this key are no longer named by it.
        let stale = Set(try client.range(full + ".chunks/", prefix: true, keysOnly: true).compactMap { kv -> String? in
            let rest = kv.key.dropFirst((full + ".chunks/").count)
            let owner = rest.split(separator: "/").first.map(String.init)
            return owner == nonce ? nil : owner
        })
        for old in stale { try fenced([EtcdClient.delete(full + ".chunks/\(old)/", prefix: true)], doing: "pruning \(key)") }
    }

    public func remove(_ key: String) throws(CoordinatorError) {
        try fenced([EtcdClient.delete(prefix + key), EtcdClient.delete(prefix + key + ".chunks/", prefix: true)], doing: "removing \(key)")
    }

    public func removeTree(_ prefix: String) throws(CoordinatorError) {
        try fenced([EtcdClient.delete(self.prefix + prefix, prefix: true)], doing: "removing \(prefix)")
    }

    public func children(_ prefix: String) throws(CoordinatorError) -> [String] {
        let base = self.prefix + prefix
        var names = Set<String>()
        for kv in try client.range(base, prefix: true, keysOnly: true) {
            guard let name = kv.key.dropFirst(base.count).split(separator: "/").first.map(String.init),
                  !name.hasSuffix(".chunks") else { continue }
            names.insert(name)
        }
        return names.sorted()
    }
}

/// Leadership among coordinators sharing an etcd prefix: the leader holds `key` under a lease
/// it renews every third of `ttl`. One that stops renewing (killed, frozen, cut off from etcd)
/// loses the key when the lease runs out, and a coordinator standing by takes it.
public final class EtcdLeadership: @unchecked Sendable {
    public let key: String
    public let client: EtcdClient
    let ttl: Int
    let identity: String
    /// The lease and the revision the key was created at, once leading.
    public private(set) var lease: Int64 = 0
    public private(set) var revision: Int64 = 0
    private let lastRenewed = Mutex<ContinuousClock.Instant>(.now)
    /// From a failed renewal to the next try.
    static let retryPause: Duration = .milliseconds(200)
    private let stopped = Atomic<Bool>(false)

    /// `identity`: what standbys log as the leader (its address).
    public init(client: EtcdClient, prefix: String, ttl: Int, identity: String) {
        self.client = client
        key = (prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix) + "/leader"
        self.ttl = max(2, ttl)
        self.identity = identity
    }

    /// Waits until this coordinator leads; `onWaiting` hears who leads (nil: unknown, etcd does
    /// not answer) and a line to log, whenever that changes.
    public func campaign(onWaiting: @Sendable (_ leader: String?, _ message: String) -> Void) async {
        var lastLeader: String?
        var lease: Int64 = 0
        while !Task.isCancelled {
            // Each attempt's HTTP calls block for up to the client's timeout: on a GCD thread,
            // not on one of the few threads every task of the process shares.
            let leaseNow = lease
            let attempt: Result<CampaignAttempt, CoordinatorError>
            do throws(CoordinatorError) {
                attempt = .success(try await readingFiles { () throws(CoordinatorError) in try self.attempt(lease: leaseNow) })
            } catch {
                attempt = .failure(error)
            }
            switch attempt {
            case .success(.led(let granted, let createdAt, let started)):
                self.lease = granted
                revision = createdAt
                lastRenewed.withLock { $0 = started }
                return
            case .success(.waiting(let granted, let leader)):
                lease = granted
                if leader != lastLeader {
                    onWaiting(leader, "standing by: \(leader) leads (etcd key \(key))")
                    lastLeader = leader
                }
            case .failure(let error):
                onWaiting(nil, "standing by: etcd is not answering (\(error.description)); retrying")
                lastLeader = nil
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    private enum CampaignAttempt: Sendable {
        case led(lease: Int64, revision: Int64, started: ContinuousClock.Instant)
        case waiting(lease: Int64, leader: String)
    }

    /// One try at the key: keeps (or grants) the lease, then creates the key if nobody holds it.
    private func attempt(lease: Int64) throws(CoordinatorError) -> CampaignAttempt {
        var lease = lease
        let alive = lease == 0 ? false : try client.keepAlive(lease) > 0
        if !alive { lease = try client.grantLease(ttl: ttl) }
        let started = ContinuousClock.now
        let (succeeded, reply) = try client.transaction(
            compare: [EtcdClient.createRevision(of: key, is: 0)],
            success: [EtcdClient.put(key, Array(identity.utf8), lease: lease)],
            failure: [["request_range": ["key": EtcdClient.base64(key)]]])
        if succeeded { return .led(lease: lease, revision: EtcdClient.revision(reply), started: started) }
        let responses = reply["responses"] as? [[String: Any]] ?? []
        let range = responses.first?["response_range"] as? [String: Any] ?? [:]
        let leader = EtcdClient.keyValues(range).first.map { String(decoding: $0.value, as: UTF8.self) } ?? "?"
        return .waiting(lease: lease, leader: leader)
    }

    /// Renews the lease on a thread of its own (never queued behind other work) until
    /// `resign()`; `onLost` runs once if the lease ends or cannot be renewed within its TTL.
    ///
    /// A renewal may take only the time the lease has left, shared among etcd's members, and a
    /// failed one is tried again within `retryPause`: an etcd member that stops answering
    /// (frozen, or its host gone, so that calls to it wait for the client's timeout) costs a
    /// slice of the TTL, not the leadership.
    public func keepLeading(onLost: @escaping @Sendable (String) -> Void) {
        let thread = Thread { [self] in
            let interval = Double(ttl) / 3
            var pause = interval
            var lastFailure: CoordinatorError?
            while !stopped.load(ordering: .relaxed) {
                Thread.sleep(forTimeInterval: pause)
                if stopped.load(ordering: .relaxed) { return }
                // A process frozen past the TTL wakes here: its lease is gone, whatever etcd says.
                let age = lastRenewed.withLock { $0 }.duration(to: .now)
                if age >= .seconds(ttl) {
                    onLost("the lease was last renewed \(age) ago, longer than its TTL of \(ttl) s"
                           + (lastFailure.map { "; the last renewal failed: \($0.description)" } ?? ""))
                    return
                }
                let sent = ContinuousClock.now
                do throws(CoordinatorError) {
                    let remaining = try client.keepAlive(lease, within: .seconds(ttl) - age)
                    guard remaining > 0 else {
                        onLost("etcd says the lease has ended")
                        return
                    }
                    lastRenewed.withLock { $0 = sent }
                    lastFailure = nil
                    // The next renewal a third of the TTL after this one was sent, however long it took.
                    pause = max(0, interval - sent.duration(to: .now).inSeconds)
                } catch {
                    // Tried again soon, until the TTL runs out.
                    lastFailure = error
                    pause = min(interval, Self.retryPause.inSeconds)
                }
            }
        }
        thread.name = "quiver-leadership"
        thread.start()
    }

    /// Gives the leadership up at once (a clean stop), so a standby need not wait out the TTL.
    public func resign() {
        stopped.store(true, ordering: .relaxed)
        guard lease != 0 else { return }
        try? client.revoke(lease)
    }
}

private extension Duration {
    /// In seconds, as `Thread.sleep` takes them.
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
