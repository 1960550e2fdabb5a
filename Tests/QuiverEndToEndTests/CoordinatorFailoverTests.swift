import Foundation
import QuiverClient
import QuiverCoordinator
import QuiverIndex
import QuiverProtocol
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A single-member etcd this test starts on loopback ports of its own, with its data in a
/// temporary folder, and stops by pid.
final class EtcdProcess: @unchecked Sendable {
    static let binary: String? = ["/usr/bin/etcd", "/usr/local/bin/etcd"].first { FileManager.default.isExecutableFile(atPath: $0) }

    let url: String
    private let process = Process()
    private let log: URL
    /// etcd's own data: in memory where the machine has /dev/shm (an fsync on a disk shared
    /// with builds can take seconds, longer than a test's lease).
    private let dataFolder: URL

    init(folder: URL) throws {
        let shm = URL(fileURLWithPath: "/dev/shm")
        dataFolder = (FileManager.default.isWritableFile(atPath: shm.path) ? shm : folder)
            .appendingPathComponent("quiver-etcd-\(UUID().uuidString)")
        let client = try freeLoopbackPort(), peer = try freeLoopbackPort()
        url = "http://127.0.0.1:\(client)"
        let log = folder.appendingPathComponent("etcd.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.binary!)
        process.arguments = ["--name", "quiver-test", "--data-dir", dataFolder.path,
                             "--listen-client-urls", url, "--advertise-client-urls", url,
                             "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
                             "--initial-cluster", "quiver-test=http://127.0.0.1:\(peer)"]
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        self.log = log
        try process.run()
    }

    /// Waits (up to 30 s, sleeping as a task, not blocking a thread the suite's other tests
    /// run on) until etcd says it serves.
    func waitUntilReady() async throws {
        let deadline = Date().addingTimeInterval(30)
        while true {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if text.contains("ready to serve client requests") { return }
            guard process.isRunning else { throw LocalClusterError("etcd exited during start-up:\n\(text)") }
            guard Date() < deadline else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LocalClusterError("etcd did not start within 30 s; see \(log.path)")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: dataFolder)
    }

    deinit { stop() }
}

/// A port on 127.0.0.1 that was free a moment ago (bound to 0, read back, released).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw LocalClusterError("cannot find a free port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Searches of a background load answered so far, and whether it should stop.
final class SearchLoad: Sendable {
    private let count = Atomic<Int>(0)
    private let stopFlag = Atomic<Bool>(false)
    var answered: Int { count.load(ordering: .relaxed) }
    var stopped: Bool { stopFlag.load(ordering: .relaxed) }
    func answer() { count.add(1, ordering: .relaxed) }
    func stop() { stopFlag.store(true, ordering: .relaxed) }
}

/// Two coordinators over one etcd: one leads, the other stands by answering searches. Killed,
/// the leader's place is taken within the lease's TTL, searches never stop and nothing
/// acknowledged is lost; frozen past its TTL and thawed, it steps down and writes nothing.
@Suite(.serialized, .enabled(if: EtcdProcess.binary != nil, "needs etcd (apt-get install etcd-server)"))
struct CoordinatorFailoverTests {
    @Test func aStandbyTakesOverFromADeadOrFrozenLeaderAndNothingAcknowledgedIsLost() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-failover-\(UUID().uuidString)")
        let importRoot = root.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: importRoot, withIntermediateDirectories: true)
        defer { if ProcessInfo.processInfo.environment["QUIVER_KEEP"] == nil { try? FileManager.default.removeItem(at: root) } }
        let etcd = try EtcdProcess(folder: root)
        defer { etcd.stop() }
        try await etcd.waitUntilReady()
        var workers: [ServerProcess] = []
        defer { workers.forEach { $0.stop() } }
        for index in 0 ..< 3 {
            workers.append(try ServerProcess(binary: quiverBinary, name: "worker-\(index)",
                                             arguments: ["worker", "--listen", "127.0.0.1:0", "--data-dir", root.appendingPathComponent("worker-\(index)").path],
                                             logDirectory: root))
        }
        let ports = [try freeLoopbackPort(), try freeLoopbackPort()]
        let addresses = ports.map { HostAndPort(host: "127.0.0.1", port: $0) }
        func coordinator(_ index: Int, workers list: [ServerProcess] = []) throws -> ServerProcess {
            var arguments = ["coordinator", "--listen", addresses[index].description, "--etcd", etcd.url, "--etcd-prefix", "/quiver/test",
                             "--lease-ttl", "6", "--heartbeat-interval", "0.2", "--import-root", importRoot.path]
            if !list.isEmpty { arguments += ["--workers", list.map(\.address.description).joined(separator: ",")] }
            return try ServerProcess(binary: quiverBinary, name: "coordinator-\(index)", arguments: arguments, logDirectory: root)
        }
        let rows = ReplicationTests()
        var first = try coordinator(0, workers: workers)
        try await rows.waitUntil("the first coordinator leads", seconds: 120,
                                 detail: { "coordinator-0 (running: \(first.isRunning)), last 40 log lines:\n"
                                     + first.logText().split(separator: "\n").suffix(40).joined(separator: "\n") }) {
            first.logText().contains("leading /quiver/test")
        }
        let second = try coordinator(1)
        defer { first.stop(); second.stop() }
        // Each phase prints how long it took; one that throws names itself and shows both
        // coordinators' last log lines.
        let phase = TestPhases("failover") { return [first, second] }
        let data = try ClusterData(folder: importRoot, count: 3000)
        let firstRows = 0 ..< 2000
        try await phase("creating, training, loading 2,000 rows, searching them") { try await QuiverClient.withConnection(to: addresses) { client in
            var settings = CollectionSettings(name: "docs", dimension: data.dimension, metric: .innerProduct)
            settings.nlist = 12
            settings.replicationFactor = 2
            _ = try await client.createCollection(settings)
            _ = try await client.train("docs", fromFile: data.basePath)
            try await client.load("docs", vectors: Array(data.base.values[0 ..< firstRows.upperBound * data.dimension]),
                                  dimension: data.dimension, ids: firstRows.map(Int64.init))
            try await rows.expectEveryRowFinds(itself: firstRows, in: data, client)
        } }
        // The standby answers searches from the stored state, and refuses changes naming the leader.
        try await phase("searching and writing through the standby") { try await QuiverClient.withConnection(to: addresses[1]) { client in
            try await rows.waitUntil("the standby sees the collection") {
                (try? await client.describeCollection("docs").vectorCount) == UInt64(firstRows.count)
            }
            try await rows.expectEveryRowFinds(itself: firstRows, in: data, client)
            do {
                _ = try await client.createCollection(CollectionSettings(name: "other", dimension: 8, metric: .l2))
                Issue.record("the standby created a collection")
            } catch let error as QuiverClientError {
                #expect(error.code == .unavailable && error.message.contains(addresses[0].description), "\(error)")
            }
        } }

        // Searches in flight when the leader dies: the client library sends each one that was
        // on the leader's connection again, to the standby (a search changes nothing), so none
        // fails. Four clients, each with its search stream on whichever coordinator round
        // robin chose, search 500 rows at a time until the standby leads: the streams on the
        // leader (each has an even chance) have a search in flight when it dies, most of the time.
        let heavy = Array(data.base.values[0 ..< 500 * data.dimension])
        let inFlight = SearchLoad()
        let searchers = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0 ..< 4 {
                    group.addTask {
                        try await QuiverClient.withConnection(to: addresses) { client in
                            while !inFlight.stopped && inFlight.answered < 10_000 {
                                let hits = try await client.search("docs", queries: heavy, dimension: data.dimension, k: 10, nprobe: 12,
                                                                   reorderK: 60, requireFullCoverage: true, timeout: .seconds(120))
                                #expect(hits.coverage == 1)
                                inFlight.answer()
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        defer {
            inFlight.stop()
            searchers.cancel()
        }
        try await rows.waitUntil("the first searches in flight are answered", seconds: 120) { inFlight.answered >= 8 }

        // The leader dies: searches go on (the standby answers them), and the standby leads
        // within the TTL (6 s: long enough that a leader starved of CPU on a busy test machine keeps its lease) plus its polling, from etcd alone.
        first.crash()
        let killed = ContinuousClock.now
        let answeredBefore = inFlight.answered
        try await phase("searching while the standby takes over, then loading 500 rows") { try await QuiverClient.withConnection(to: addresses) { client in
            var searches = 0
            while !second.logText().contains("leading /quiver/test") && killed.duration(to: .now) < .seconds(120) {
                let hits = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 10,
                                                   nprobe: 12, reorderK: 60, requireFullCoverage: true)
                #expect(hits.coverage == 1)
                searches += 1
            }
            print("failover: the standby led \(killed.duration(to: .now)) after the leader was killed; \(searches) searches answered meanwhile, none failed")
            inFlight.stop()
            try await searchers.value
            print("failover: \(inFlight.answered - answeredBefore) searches of 500 rows answered on four other connections after the kill, none failed")
            #expect(second.logText().contains("leading /quiver/test"))
            try await rows.expectEveryRowFinds(itself: firstRows, in: data, client)
            // Writes go on through the new leader (its workers came from etcd, not its flags).
            try await client.load("docs", vectors: Array(data.base.values[firstRows.upperBound * data.dimension ..< 2500 * data.dimension]),
                                  dimension: data.dimension, ids: (2000 ..< 2500).map(Int64.init))
            try await rows.expectEveryRowFinds(itself: 0 ..< 2500, in: data, client)
        } }

        // The new leader freezes past its TTL; the restarted first coordinator takes over.
        print("failover: freezing the new leader")
        first = try coordinator(0)
        kill(second.pid, SIGSTOP)
        try await rows.waitUntil("the restarted coordinator leads", seconds: 120,
                                 detail: { "coordinator-0 (running: \(first.isRunning)), last 40 log lines:\n"
                                     + first.logText().split(separator: "\n").suffix(40).joined(separator: "\n") }) {
            first.logText().contains("leading /quiver/test")
        }
        // Thawed, the frozen one must not write: a collection created through it is refused
        // (or it is already gone), and it exits.
        kill(second.pid, SIGCONT)
        print("failover: thawed the deposed leader")
        let late = try? await QuiverClient.withConnection(to: addresses[1], timeout: .seconds(5)) { client in
            try await client.createCollection(CollectionSettings(name: "late", dimension: data.dimension, metric: .innerProduct))
        }
        #expect(late == nil, "the deposed leader accepted a write")
        try await rows.waitUntil("the deposed leader exits") { !second.isRunning }
        #expect(second.exitStatus == 75)
        #expect(second.logText().contains("leadership") || second.logText().contains("no longer leads"))
        print("failover: the deposed leader exited")
        try await phase("loading the last 500 rows through the restarted leader") { try await QuiverClient.withConnection(to: addresses) { client in
            try await rows.waitUntil("the first coordinator answers again") {
                (try? await client.describeCollection("docs").vectorCount) == 2500
            }
            #expect(try await client.listCollections().map(\.config.name) == ["docs"])
            try await client.load("docs", vectors: Array(data.base.values[2500 * data.dimension ..< 3000 * data.dimension]),
                                  dimension: data.dimension, ids: (2500 ..< 3000).map(Int64.init))
            try await rows.expectEveryRowFinds(itself: 0 ..< 3000, in: data, client)
        } }
    }

    /// A leader whose etcd member stops answering without closing anything (frozen, or its
    /// host gone: each call to it waits out the client's 5 s timeout, close to the lease's
    /// TTL) renews through another member in time, and keeps leading: a standby never takes over.
    @Test func aLeaderKeepsItsLeaseWhenAnEtcdMemberStopsAnswering() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-hold-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let etcd = try EtcdProcess(folder: root)
        defer { etcd.stop() }
        try await etcd.waitUntilReady()
        // The forwarder stands for a second member of the same etcd cluster, listed first, so
        // the leader's calls go to it until it stops answering.
        let member = try HoldingForwarder(to: try #require(HostAndPort(String(etcd.url.dropFirst("http://".count)))))
        defer { member.stop() }
        let ttl = 6
        let leader = EtcdLeadership(client: try EtcdClient(urls: "http://\(member.address),\(etcd.url)"), prefix: "/quiver/hold",
                                    ttl: ttl, identity: "leader")
        await leader.campaign { _, _ in }
        let lost = Mutex<[String]>([])
        leader.keepLeading { reason in lost.withLock { $0.append(reason) } }
        let standby = EtcdLeadership(client: try EtcdClient(urls: etcd.url), prefix: "/quiver/hold", ttl: ttl, identity: "standby")
        let standing = Task { await standby.campaign { _, _ in } }

        member.hold()
        // Before, the renewal sent to the held member waited out its 5 s timeout before trying
        // the other member, about 7 s after the last renewal, past the TTL: the lease ended and
        // the standby led.
        try await Task.sleep(for: .seconds(ttl + 3))
        #expect(lost.withLock { $0 } == [], "the leader lost its lease")
        #expect(standby.revision == 0, "the standby took the leadership while the leader was renewing")
        standing.cancel()
        await standing.value
        leader.resign()
        standby.resign()
    }

    /// The state in etcd, fenced: once another coordinator holds the leadership, a write from
    /// the one that held it before is refused and changes nothing.
    @Test func writesOfADeposedLeaderAreRefused() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-fence-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let etcd = try EtcdProcess(folder: root)
        defer { etcd.stop() }
        try await etcd.waitUntilReady()
        let client = try EtcdClient(urls: etcd.url)
        let old = EtcdLeadership(client: client, prefix: "/quiver/fence", ttl: 10, identity: "old")
        await old.campaign { _, _ in }
        old.keepLeading { _ in }
        let fenced = Mutex<[String]>([])
        let oldState = EtcdMetadata(client: client, prefix: "/quiver/fence/meta/", leadership: old) { reason in fenced.withLock { $0.append(reason) } }
        try oldState.write("collections/a/collection.json", Array("one".utf8))
        let model = (0 ..< 3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try oldState.write("collections/a/model-1.qvm", model)
        #expect(try oldState.read("collections/a/model-1.qvm") == model, "a value of several chunks reads back whole")
        #expect(try oldState.children("collections/a/") == ["collection.json", "model-1.qvm"])

        // The old leader's lease ends (revoked here, as etcd would let it run out); another
        // coordinator leads, while the old one still holds its handle on the state.
        old.resign()
        let new = EtcdLeadership(client: client, prefix: "/quiver/fence", ttl: 10, identity: "new")
        await new.campaign { _, _ in }
        #expect(new.revision > old.revision)
        let newState = EtcdMetadata(client: client, prefix: "/quiver/fence/meta/", leadership: new) { _ in }
        #expect(throws: CoordinatorError.self) { try oldState.write("collections/a/collection.json", Array("stale".utf8)) }
        #expect(throws: CoordinatorError.self) { try oldState.removeTree("collections/") }
        #expect(fenced.withLock { $0.count } == 2)
        #expect(try newState.read("collections/a/collection.json") == Array("one".utf8))
        #expect(try newState.read("collections/a/model-1.qvm") == model)
        try newState.write("collections/a/collection.json", Array("two".utf8))
        #expect(try newState.read("collections/a/collection.json") == Array("two".utf8))
        try newState.remove("collections/a/model-1.qvm")
        #expect(try newState.children("collections/a/") == ["collection.json"])
        new.resign()
    }
}
