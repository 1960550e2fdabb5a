import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import QuiverClient
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import SwiftProtobuf
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Requests a hostile or careless client sends straight to the coordinator's and the workers'
/// ports. For each: the status it gets, that every process is still alive, and that what was
/// stored is unchanged.
@Suite(.serialized) struct HostileClientTests {
    /// A ready collection with data, and the answer to a fixed search, to compare against later.
    private func loaded(_ cluster: LocalCluster, count: Int = 2000) async throws -> (ClusterData, SearchHits) {
        let data = try ClusterData(folder: cluster.importRoot, count: count)
        let hits = try await cluster.client { client in
            var settings = CollectionSettings(name: "docs", dimension: data.dimension, metric: .innerProduct)
            settings.nlist = 12
            _ = try await client.createCollection(settings)
            _ = try await client.train("docs", fromFile: data.basePath)
            try await client.load("docs", vectors: data.base.values, dimension: data.dimension)
            return try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 5, nprobe: 12)
        }
        return (data, hits)
    }

    private func expectUnchanged(_ cluster: LocalCluster, _ data: ClusterData, _ before: SearchHits,
                                 sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(cluster.coordinator.isRunning, "the coordinator died", sourceLocation: sourceLocation)
        let running = cluster.workers.map(\.isRunning)
        #expect(!running.contains(false), "a worker died", sourceLocation: sourceLocation)
        try await cluster.client { client in
            let after = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 5, nprobe: 12)
            #expect(after.ids == before.ids, sourceLocation: sourceLocation)
            #expect(after.coverage == 1, sourceLocation: sourceLocation)
            #expect(try await client.describeCollection("docs").vectorCount == UInt64(data.base.rows), sourceLocation: sourceLocation)
            let status = try await client.clusterStatus()
            let health = status.workers.map(\.health)
            #expect(health.allSatisfy { $0 == .healthy }, "workers \(health)", sourceLocation: sourceLocation)
        }
        try expectFramedSearches(cluster, sourceLocation: sourceLocation)
    }

    /// On a worker's framed port and on the coordinator's alike.
    @Test(arguments: [false, true]) func hostileBytesOnTheFramedSearchPortCloseOnlyTheirConnection(coordinator: Bool) async throws {
        let cluster = try startCluster(workers: 1)
        defer { cluster.shutdown() }
        let (data, before) = try await loaded(cluster)
        let server = coordinator ? cluster.coordinator! : cluster.workers[0]
        let port = try server.loggedAddress(after: "framed search port on ")
        var hello = Quiver_V1_FrameHello()
        hello.version = 1
        hello.method = coordinator ? FramedMethod.search : FramedMethod.searchLists
        let helloFrame = rawFrame(kind: 1, body: try hello.serializedBytes())
        // Clients that stall mid-frame or never speak hold only their own connections.
        let stalled = try RawSocket(port)
        stalled.send(helloFrame + [0, 0, 0, 100, 3, 1, 2])
        let silent = try (0 ..< 20).map { _ in try RawSocket(port) }
        var generator = SeededGenerator(seed: 7)
        var garbage = (0 ..< 65_536).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        garbage[0] = 0xA0
        let cases: [(String, [UInt8])] = [
            ("garbage", garbage),
            ("a 4 GiB length", [0xFF, 0xFF, 0xFF, 0xFF, 3]),
            ("a length just over the limit after the hello", helloFrame + [0x04, 0x00, 0x00, 0x02, 3]),
            ("an empty frame", helloFrame + [0, 0, 0, 0]),
            ("an unknown kind", helloFrame + rawFrame(kind: 9, body: [1, 2, 3])),
            ("a message that is not protobuf", helloFrame + rawFrame(kind: 3, body: [0x07, 0x01])),
            ("a message before the hello", rawFrame(kind: 3, body: [])),
            ("a hello that is not protobuf", rawFrame(kind: 1, body: [UInt8](repeating: 0xFF, count: 12))),
            ("a second hello", helloFrame + helloFrame),
        ]
        for (name, bytes) in cases {
            let socket = try RawSocket(port)
            socket.send(bytes)
            #expect(socket.closedByPeer(), "\(name): \(server.name) kept the connection open")
        }
        // Truncated: a frame announced at 1 MiB, 100 bytes of it, and the client leaves.
        try RawSocket(port).send(helloFrame + [0, 0x10, 0, 0, 3] + [UInt8](repeating: 0, count: 99))
        // Searches (over the client's and the coordinator's own framed connections) go on as before.
        try await expectUnchanged(cluster, data, before)
        let log = server.logText()
        #expect(log.contains("closing framed connection"))
        withExtendedLifetime((stalled, silent)) {}
    }

    @Test func malformedTimeoutHeadersGetInvalidArgumentAndKillNothing() async throws {
        let cluster = try startCluster(workers: 1)
        defer { cluster.shutdown() }
        let (data, before) = try await loaded(cluster)
        let list = try Quiver_V1_ListCollectionsRequest().serializedBytes() as [UInt8]
        let stats = try Quiver_V1_WorkerStatsRequest().serializedBytes() as [UInt8]
        for timeout in ["-1S", "-99999999H", "+5S", "1.5S", "9999999999999999H", "S", "5", "5X", ""] {
            let coordinator = try await RawGRPC.call(cluster.coordinator.address, path: "/quiver.v1.Coordinator/ListCollections",
                                                     extra: [("grpc-timeout", timeout)], message: list)
            #expect(coordinator.status == 3, "coordinator, grpc-timeout \"\(timeout)\": \(coordinator.headers)")
            #expect(coordinator.message.contains("grpc-timeout"))
            let worker = try await RawGRPC.call(cluster.workers[0].address, path: "/quiver.v1.Worker/Stats",
                                                extra: [("grpc-timeout", timeout)], message: stats)
            #expect(worker.status == 3, "worker, grpc-timeout \"\(timeout)\": \(worker.headers)")
        }
        // A well-formed header (8 digits of hours is the most there is) passes, and so do searches.
        let fine = try await RawGRPC.call(cluster.coordinator.address, path: "/quiver.v1.Coordinator/ListCollections",
                                          extra: [("grpc-timeout", "99999999H")], message: list)
        #expect(fine.status == 0, "\(fine.headers)")
        try await expectUnchanged(cluster, data, before)
    }

    /// A cluster over plaintext, or with TLS on every hop.
    private func startSecuredCluster(workers: Int, tls: Bool) throws -> (LocalCluster, cleanup: () -> Void) {
        guard tls else {
            let cluster = try LocalCluster(binary: quiverBinary, workers: workers)
            return (cluster, { cluster.shutdown() })
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-certs-\(UUID().uuidString)")
        let cluster = try LocalCluster(binary: quiverBinary, workers: workers,
                                       security: .init(certificates: try DevelopmentCertificates.write(to: folder.path)))
        return (cluster, {
            cluster.shutdown()
            try? FileManager.default.removeItem(at: folder)
        })
    }

    @Test(arguments: [false, true]) func numbersFromTheWireAreCheckedNotTrapped(tls: Bool) async throws {
        let (cluster, cleanup) = try startSecuredCluster(workers: 1, tls: tls)
        defer { cleanup() }
        let (data, before) = try await loaded(cluster)
        try await cluster.client { client in
            _ = try await client.createCollection(CollectionSettings(name: "other", dimension: 8, metric: .l2))
            await expectCode(.invalidArgument) { _ = try await client.trainOnFirstLoad("other", sampleRows: Int.max) }
            let q = data.queries.values
            await expectCode(.invalidArgument) {
                _ = try await client.search("docs", queries: q, dimension: data.dimension, k: 10, reorderK: 1_000_000)
            }
            await expectCode(.invalidArgument) {
                _ = try await client.search("docs", queries: q, dimension: data.dimension, k: 10, reorderK: 1_000_000_000)
            }
            // 1,000 queries × k 10,000: the answer cannot fit a message; refused up front, naming the limit.
            var many: [Float] = []
            for query in 0 ..< 1000 {
                let row = query % data.queries.rows
                many += q[row * data.dimension ..< (row + 1) * data.dimension]
            }
            do {
                _ = try await client.search("docs", queries: many, dimension: data.dimension, k: 10_000)
                Issue.record("a 1,000 × 10,000 search was answered")
            } catch let error as QuiverClientError {
                #expect(error.code == .resourceExhausted)
                #expect(error.message.contains("MiB message limit"), "\(error.message)")
            }
        }
        // Registration with nonsense is refused, and a search with a deadline of 99,999,999 hours works.
        try await withCoordinatorClient(cluster) { coordinator in
            var register = Quiver_V1_RegisterWorkerRequest()
            register.address = "127.0.0.1:0"
            await expectCode(.invalidArgument) { _ = try await coordinator.registerWorker(register) }
            register.address = String(repeating: "a", count: 300) + ":1"
            await expectCode(.invalidArgument) { _ = try await coordinator.registerWorker(register) }
        }
        if !tls {
            let far = try await RawGRPC.call(
                cluster.coordinator.address, path: "/quiver.v1.Coordinator/Search", extra: [("grpc-timeout", "99999999H")],
                message: try searchRequest(data).serializedBytes())
            #expect(far.status == 0, "\(far.headers)")
        }
        // The worker refuses a model upload that claims more than its limit before taking any of it.
        let asCoordinator = cluster.security.certificates.map { ClientSecurity($0.node(.coordinator)) } ?? .plaintext
        try await withWorkerClient(cluster.workers[0].address, security: asCoordinator) { worker in
            await expectCode(.resourceExhausted) {
                _ = try await worker.installModel { writer in
                    var chunk = Quiver_V1_InstallModelChunk()
                    chunk.collection = "huge"
                    chunk.modelVersion = 1
                    chunk.totalBytes = 1 << 40
                    chunk.data = Data([1, 2, 3])
                    try await writer.write(chunk)
                }
            }
        }
        try await expectUnchanged(cluster, data, before)
    }

    @Test(arguments: [false, true]) func serverSideFilesStayInsideTheImportRoot(tls: Bool) async throws {
        let (cluster, cleanup) = try startSecuredCluster(workers: 1, tls: tls)
        defer { cleanup() }
        let (data, before) = try await loaded(cluster)
        let root = cluster.importRoot.path
        let outside = cluster.root.appendingPathComponent("secret.npy").path
        try Data("SECRET-CONTENTS-0123456789".utf8).write(to: URL(fileURLWithPath: outside))
        try Data("SECRET-CONTENTS-0123456789".utf8).write(to: URL(fileURLWithPath: root + "/garbage.npy"))
        #expect(symlink(outside, root + "/leak.npy") == 0)
        #expect(symlink("/etc/passwd", root + "/passwd.npy") == 0)
        #expect(mkfifo(root + "/fifo.npy", 0o644) == 0)
        try await cluster.client { client in
            func refused(_ path: String, _ codes: [RPCError.Code]) async {
                let started = ContinuousClock.now
                do {
                    _ = try await client.loadFiles("docs", pathGlob: path)
                    Issue.record("LoadFiles of \(path) was accepted")
                } catch {
                    #expect(codes.contains(error.code), "\(path): \(error)")
                    #expect(!error.message.contains("SECRET") && !error.message.contains("53 45 43") && !error.message.contains("root:"),
                            "\(path): the error shows file contents: \(error.message)")
                    // Only what the caller sent may come back: no server path it did not name.
                    #expect(path.hasPrefix("/") || !error.message.contains(cluster.root.path),
                            "\(path): the error shows server paths: \(error.message)")
                }
                #expect(ContinuousClock.now - started < .seconds(5), "\(path) took \(ContinuousClock.now - started)")
            }
            await refused("fifo.npy", [.invalidArgument])
            await refused("*.npy", [.permissionDenied, .invalidArgument])  // the glob meets the FIFO and the links
            await refused("leak.npy", [.permissionDenied])
            await refused("passwd.npy", [.permissionDenied])
            await refused("garbage.npy", [.invalidArgument])
            await refused(outside, [.permissionDenied])
            await refused("/etc/passwd", [.permissionDenied])
            await refused("/*/*/*/*/*/*/*/*.npy", [.permissionDenied])
            await refused("../secret.npy", [.permissionDenied])
            await refused("base.npy/../../secret.npy", [.permissionDenied])
            await refused("nothing-*.npy", [.notFound])
            await refused("base.txt", [.notFound, .invalidArgument])
            _ = try await client.createCollection(CollectionSettings(name: "fresh", dimension: data.dimension, metric: .l2))
            await expectCode(.permissionDenied) { _ = try await client.train("fresh", fromFile: "/etc/passwd") }
            await expectCode(.invalidArgument) { _ = try await client.train("fresh", fromFile: "fifo.npy") }
        }
        try await expectUnchanged(cluster, data, before)
    }

    @Test func clientsNeedTokensOfTheRightRoleAndWorkersTheJoinToken() async throws {
        let secrets = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: secrets, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: secrets) }
        let (admin, writer, reader, join) = ("admin-token-0123456789", "write-token-0123456789", "read-token-0123456789",
                                             "join-token-0123456789")
        try "admin ops \(admin)\nwrite loader \(writer)\n# comment\nread web \(reader)\n"
            .write(to: secrets.appendingPathComponent("tokens"), atomically: true, encoding: .utf8)
        try join.write(to: secrets.appendingPathComponent("join"), atomically: true, encoding: .utf8)
        let cluster = try LocalCluster(binary: quiverBinary, workers: 2, security: .init(
            tokensFile: secrets.appendingPathComponent("tokens").path, joinTokenFile: secrets.appendingPathComponent("join").path,
            clientToken: writer))
        defer { cluster.shutdown() }
        let (data, before) = try await loaded(cluster)

        try await cluster.client(token: "") { client in
            await expectCode(.unauthenticated) { _ = try await client.listCollections() }
            await expectCode(.unauthenticated) { _ = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 5) }
        }
        try await cluster.client(token: "not-a-known-token-at-all") { client in
            await expectCode(.unauthenticated) { _ = try await client.listCollections() }
        }
        // The coordinator's framed search port asks what its gRPC port asks: a reader's token.
        let searchPort = try #require(cluster.coordinatorSearchAddress)
        var message = Quiver_V1_SearchStreamRequest()
        message.search = searchRequest(data)
        message.search.nprobe = 12
        for (token, code) in [("", RPCError.Code.unauthenticated), ("not-a-known-token-at-all", .unauthenticated), (reader, nil)] {
            let framed = try FramedCallClient<Quiver_V1_SearchStreamRequest, Quiver_V1_SearchStreamResponse>(
                address: searchPort, method: FramedMethod.search, security: .plaintext, token: token)
            defer { framed.close() }
            if let code {
                await expectCode(code) { _ = try await framed.call(message, timeout: .seconds(10)) }
            } else {
                let answer = try await framed.call(message, timeout: .seconds(10))
                guard case .result(let result) = answer.outcome else { Issue.record("a reader's framed search failed: \(answer)"); continue }
                #expect(try result.results.unpackedIDs() == before.ids)
            }
        }
        try await cluster.client(token: reader) { client in
            #expect(try await client.listCollections().count == 1)
            _ = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 5)
            await expectCode(.permissionDenied) { _ = try await client.dropCollection("docs", ifExists: false) }
            await expectCode(.permissionDenied) {
                _ = try await client.createCollection(CollectionSettings(name: "x", dimension: 4, metric: .l2))
            }
            await expectCode(.permissionDenied) { _ = try await client.load("docs", vectors: Array(data.base.values.prefix(32)), dimension: 32) }
        }
        try await cluster.client(token: writer) { client in
            await expectCode(.permissionDenied) { _ = try await client.removeWorker(cluster.workers[0].address.description) }
        }
        // Membership: the join token registers new workers but cannot move a known one; admin can remove.
        let known = cluster.workers[0].address.description
        try await withCoordinatorClient(cluster) { coordinator in
            var register = Quiver_V1_RegisterWorkerRequest()
            register.workerID = known
            register.address = "127.0.0.1:9"
            await expectCode(.unauthenticated) { _ = try await coordinator.registerWorker(register) }
            await expectCode(.permissionDenied) { _ = try await coordinator.registerWorker(register, metadata: .bearer(reader)) }
            await expectCode(.permissionDenied) { _ = try await coordinator.registerWorker(register, metadata: .bearer(join)) }
            register.workerID = "bogus"
            _ = try await coordinator.registerWorker(register, metadata: .bearer(join))
        }
        try await cluster.client(token: admin) { client in
            await expectCode(.failedPrecondition) { _ = try await client.removeWorker(known) }
            let remaining = try await client.removeWorker("bogus")
            #expect(remaining == 2)
            await expectCode(.notFound) { _ = try await client.removeWorker("bogus") }
        }
        // A worker's port answers only the join token; its health needs nothing.
        try await withWorkerClient(cluster.workers[0].address) { worker in
            await expectCode(.unauthenticated) { _ = try await worker.stats(Quiver_V1_WorkerStatsRequest()) }
            var drop = Quiver_V1_WorkerDropCollectionRequest()
            drop.collection = "docs"
            await expectCode(.unauthenticated) { _ = try await worker.dropCollection(drop) }
            await expectCode(.permissionDenied) { _ = try await worker.dropCollection(drop, metadata: .bearer(admin)) }
            var assign = Quiver_V1_AssignListsRequest()
            assign.collection = "docs"
            assign.modelVersion = 1
            assign.shardMapVersion = .max
            await expectCode(.unauthenticated) { _ = try await worker.assignLists(assign) }
            await expectCode(.unauthenticated) {
                _ = try await worker.ingest { writer in
                    var message = Quiver_V1_IngestRequest()
                    message.collection = "docs"
                    try await writer.write(message)
                }
            }
            let stats = try await worker.stats(Quiver_V1_WorkerStatsRequest(), metadata: .bearer(join))
            #expect(stats.vectors > 0)
        }
        try await withHealthClient(cluster.workers[0].address) { health in
            var check = Grpc_Health_V1_HealthCheckRequest()
            check.service = "quiver.v1.Worker"
            let answer = try await health.check(check)
            #expect(answer.status == .serving)
        }
        try await expectUnchanged(cluster, data, before)
    }

    @Test func mutualTLSOnEveryHop() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-certs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificates = try DevelopmentCertificates.write(to: folder.path)
        let cluster = try LocalCluster(binary: quiverBinary, workers: 2, security: .init(certificates: certificates))
        defer { cluster.shutdown() }
        let (data, before) = try await loaded(cluster)
        // Plaintext to a TLS port fails; so does TLS against a CA that did not sign the server.
        await expectCode(.unavailable) {
            try await QuiverClient.withConnection(to: cluster.coordinator.address, timeout: .seconds(5)) { client in
                _ = try await client.listCollections()
            }
        }
        let stranger = try DevelopmentCertificates.write(to: folder.path + "/stranger")
        await expectCode(.unavailable) {
            try await QuiverClient.withConnection(to: cluster.coordinator.address, timeout: .seconds(5),
                                                  security: .tls(trustRoots: stranger.ca, identity: nil)) { client in
                _ = try await client.listCollections()
            }
        }
        // A worker answers the coordinator's certificate only: not a worker's, not a stranger's, not none.
        let worker: HostAndPort = cluster.workers[0].address
        let workerFiles = certificates.node(.worker)
        try await withWorkerClient(worker, security: .tls(trustRoots: certificates.ca, identity: (workerFiles.certificateChain, workerFiles.privateKey))) { client in
            await expectCode(.permissionDenied) { _ = try await client.stats(Quiver_V1_WorkerStatsRequest()) }
        }
        let strangerFiles = stranger.node(.coordinator)
        try await withWorkerClient(worker, security: .tls(trustRoots: certificates.ca, identity: (strangerFiles.certificateChain, strangerFiles.privateKey))) { client in
            await expectCode(.unavailable) { _ = try await client.stats(Quiver_V1_WorkerStatsRequest()) }
        }
        try await withWorkerClient(worker, security: .tls(trustRoots: certificates.ca, identity: nil)) { client in
            await expectCode(.unavailable) { _ = try await client.stats(Quiver_V1_WorkerStatsRequest()) }
        }
        try await withWorkerClient(worker, security: ClientSecurity(certificates.node(.coordinator))) { client in
            let stats = try await client.stats(Quiver_V1_WorkerStatsRequest())
            #expect(stats.vectors > 0)
        }
        try await expectUnchanged(cluster, data, before)
    }
}

private func searchRequest(_ data: ClusterData) -> Quiver_V1_SearchRequest {
    var request = Quiver_V1_SearchRequest()
    request.collection = "docs"
    request.k = 5
    request.queries = Quiver_V1_FloatMatrix(rows: data.queries.rows, dimension: data.dimension, values: data.queries.values)
    return request
}

func withWorkerClient<Result: Sendable>(_ address: HostAndPort, security: ClientSecurity = .plaintext,
                                        _ body: (Quiver_V1_Worker.Client<HTTP2ClientTransport.Posix>) async throws -> Result) async throws -> Result {
    let transport = try QuiverTransport.client(to: address, security: security)
    return try await withGRPCClient(transport: transport) { try await body(Quiver_V1_Worker.Client(wrapping: $0)) }
}

func withHealthClient<Result: Sendable>(_ address: HostAndPort, security: ClientSecurity = .plaintext,
                                        _ body: (Grpc_Health_V1_Health.Client<HTTP2ClientTransport.Posix>) async throws -> Result) async throws -> Result {
    let transport = try QuiverTransport.client(to: address, security: security)
    return try await withGRPCClient(transport: transport) { try await body(Grpc_Health_V1_Health.Client(wrapping: $0)) }
}

func withCoordinatorClient<Result: Sendable>(_ cluster: LocalCluster,
                                             _ body: (Quiver_V1_Coordinator.Client<HTTP2ClientTransport.Posix>) async throws -> Result) async throws -> Result {
    let transport = try QuiverTransport.client(to: cluster.coordinator.address, security: cluster.security.clientSecurity)
    return try await withGRPCClient(transport: transport) { try await body(Quiver_V1_Coordinator.Client(wrapping: $0)) }
}
