import Foundation
import GRPCCore
import QuiverClient
import QuiverIndex
import QuiverProtocol
import Testing

/// The coordinator answers searches that arrive together with one scatter (SearchCoalescer):
/// each must still get exactly the answer it gets alone, and a bad search among them fails alone.
@Suite(.serialized) struct CoalescingTests {
    @Test func searchesThatArriveTogetherAreAnsweredTogetherEachAsAlone() async throws {
        let cluster = try LocalCluster(binary: quiverBinary, workers: 2, security: .init(observability: true))
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 3000, queries: 48)
        let d = data.dimension
        let rows = data.queries.rows
        let queries = (0 ..< rows).map { Array(data.queries.values[$0 * d ..< ($0 + 1) * d]) }
        // Two settings among the same burst: only searches with equal settings share a scatter.
        let ks = (0 ..< rows).map { $0 % 3 == 0 ? 5 : 10 }
        func scatters() async throws -> Double {
            try await Scrape.of(cluster.coordinator).total("quiver_search_scatters_total", ["collection": "docs"])
        }

        let alone = try await cluster.client { client in
            var settings = CollectionSettings(name: "docs", dimension: d, metric: .innerProduct)
            settings.nlist = 12
            _ = try await client.createCollection(settings)
            _ = try await client.train("docs", fromFile: data.basePath)
            try await client.load("docs", vectors: data.base.values, dimension: d)
            var alone: [SearchHits] = []
            for i in 0 ..< rows {
                alone.append(try await client.search("docs", queries: queries[i], dimension: d, k: ks[i], nprobe: 4, reorderK: 20))
            }
            return alone
        }
        #expect(alone.allSatisfy { $0.coverage == 1 })

        for framed in [true, false] {
            let before = try await scatters()
            let rounds = 3
            try await cluster.client(framedSearch: framed) { client in
                for _ in 0 ..< rounds {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for i in 0 ..< rows {
                            group.addTask {
                                let hit = try await client.search("docs", queries: queries[i], dimension: d, k: ks[i], nprobe: 4, reorderK: 20)
                                #expect(hit.ids == alone[i].ids, "query \(i), framed \(framed)")
                                #expect(hit.scores == alone[i].scores, "query \(i), framed \(framed)")
                                #expect(hit.coverage == 1)
                            }
                        }
                        // Bad searches in the same bursts get their own errors.
                        group.addTask {
                            var nan = queries[1]
                            nan[3] = .nan
                            await expectCode(.invalidArgument) {
                                _ = try await client.search("docs", queries: nan, dimension: d, k: 10, nprobe: 4, reorderK: 20)
                            }
                        }
                        group.addTask {
                            await expectCode(.invalidArgument) {
                                _ = try await client.search("docs", queries: Array(queries[2].prefix(d - 1)), dimension: d - 1, k: 10, nprobe: 4, reorderK: 20)
                            }
                        }
                        group.addTask {
                            await expectCode(.notFound) { _ = try await client.search("nope", queries: queries[2], dimension: d, k: 10) }
                        }
                        try await group.waitForAll()
                    }
                }
            }
            let used = try await scatters() - before
            #expect(used >= 1)
            // The framed port gathers what one read brings; a burst of 48 always brings several.
            if framed {
                #expect(used < Double(rounds * rows), "\(used) scatters for \(rounds * rows) searches: none were coalesced")
            }
        }
    }

    /// A steady search load, coalesced on both ports, leaves the coordinator's memory where it
    /// was: each search's state is freed when it is answered (a cancel action that held its
    /// own call once kept about 20 kB a search, a gigabyte in a few minutes of load).
    @Test func aCoordinatorUnderSteadySearchLoadKeepsItsMemory() async throws {
        let cluster = try LocalCluster(binary: quiverBinary, workers: 1)
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 2000, queries: 64)
        let d = data.dimension
        let queries = (0 ..< data.queries.rows).map { Array(data.queries.values[$0 * d ..< ($0 + 1) * d]) }
        try await cluster.client { client in
            var settings = CollectionSettings(name: "docs", dimension: d, metric: .innerProduct)
            settings.nlist = 8
            _ = try await client.createCollection(settings)
            _ = try await client.train("docs", fromFile: data.basePath)
            try await client.load("docs", vectors: data.base.values, dimension: d)
        }
        let pid = cluster.coordinator.pid
        for framed in [true, false] {
            try await cluster.client(framedSearch: framed) { client in
                /// `count` searches, 8 in flight (so that they are coalesced).
                func load(_ count: Int) async throws {
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for lane in 0 ..< 8 {
                            group.addTask {
                                for i in stride(from: lane, to: count, by: 8) {
                                    let hit = try await client.search("docs", queries: queries[i % queries.count], dimension: d, k: 10, nprobe: 2)
                                    #expect(hit.ids.count == 10)
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                }
                try await load(500)
                let before = try #require(ServerProcess.residentKiB(pid: pid))
                try await load(4000)
                let grown = try #require(ServerProcess.residentKiB(pid: pid)) - before
                #expect(grown < 8 * 1024, "the coordinator grew by \(grown) kB over 4,000 searches (framed: \(framed))")
            }
        }
    }
}
