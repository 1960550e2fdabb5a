import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import QuiverWorker
import Testing

/// The worker over real HTTP/2 on loopback: streaming RPCs, messages above gRPC's 4 MiB
/// default, and a clean stop that leaves the data to the next start.
@Suite struct WorkerServerTests {
    @Test func servesOverLoopbackAndRestartsWithTheSameData() async throws {
        let dir = try TemporaryDirectory()
        let model = try Fixtures.model()
        // 5 MiB of vectors in one Ingest message, above gRPC's 4 MiB default limit.
        let data = Fixtures.vectors(rows: (5 << 20) / (Fixtures.dimension * 4), seed: 3)
        let queries = data.gathering(0 ..< 10)
        let lists: [Int32] = (0 ..< Int32(Fixtures.nlist)).map { $0 }

        let first = try await withServer(dir) { worker in
            let installed = try await worker.installModel(requestProducer: { writer in
                try await writer.write(contentsOf: Requests.chunks(model, collection: "docs", chunkBytes: 4096))
            })
            #expect(installed.modelVersion == 1)
            _ = try await worker.assignLists(Requests.assign("docs", shardMapVersion: 1, lists: lists))
            let ingested = try await worker.ingest(requestProducer: { writer in
                try await writer.write(Requests.ingest("docs", model: model, vectors: data, firstID: 0))
            })
            #expect(ingested.rowsStored == UInt64(data.rows) && ingested.rowsRejected == 0)
            return try await worker.searchLists(Requests.search("docs", queries: queries, lists: lists, k: 3, reorderK: 1000))
        }
        // The same answer as the index searched in this process.
        var local = IVFIndex(model: model)
        try local.add(prepared: data, ids: nil, assignment: model.assign(data))
        let expected = queries.values.withUnsafeBufferPointer {
            local.candidates(prepared: $0.baseAddress!, count: 10, probes: Array(repeatElement(lists, count: 10).joined()),
                             nprobe: lists.count, parameters: SearchParameters(k: 3, nprobe: lists.count, reorderK: 1000))
        }
        #expect(first.ids == expected.ids && first.scores == expected.distances && first.exact == expected.exactDistances)

        let second = try await withServer(dir) { worker in
            let stats = try await worker.stats(Quiver_V1_WorkerStatsRequest())
            #expect(stats.vectors == UInt64(data.rows) && stats.workerID.hasPrefix("127.0.0.1:"))
            return try await worker.searchLists(Requests.search("docs", queries: queries, lists: lists, k: 3, reorderK: 1000))
        }
        #expect(second.ids == first.ids && second.scores == first.scores && second.exact == first.exact)
    }

    /// Starts a worker on a free port, runs `body` with a client, then stops the worker.
    private func withServer<Result: Sendable>(
        _ dir: TemporaryDirectory,
        _ body: @Sendable (Quiver_V1_Worker.Client<HTTP2ClientTransport.Posix>) async throws -> Result
    ) async throws -> Result {
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let worker = try ShardWorker.open(dataDirectory: dir.path, options: .init(workerID: "", threads: 2), logger: logger)
        let configuration = WorkerServer.Configuration(listen: HostAndPort(host: "127.0.0.1", port: 0), dataDirectory: dir.path)
        let (addresses, addressSink) = AsyncStream<HostAndPort>.makeStream()
        let (stop, stopSink) = AsyncStream<Void>.makeStream()
        return try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask {
                try await WorkerServer.serve(worker, configuration, logger: logger, onListening: { addressSink.yield($0) }) {
                    for await _ in stop {}
                }
                return nil
            }
            var iterator = addresses.makeAsyncIterator()
            let address = try #require(await iterator.next())
            #expect(address.port > 0)
            let transport = try HTTP2ClientTransport.Posix(target: .ipv4(address: address.host, port: address.port),
                                                           transportSecurity: .plaintext, serviceConfig: QuiverGRPC.serviceConfig)
            let result = try await withGRPCClient(transport: transport) { client in
                try await body(Quiver_V1_Worker.Client(wrapping: client))
            }
            stopSink.finish()
            try await group.waitForAll()
            return result
        }
    }
}
