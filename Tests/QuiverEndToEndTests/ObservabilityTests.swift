import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRPCCore
import QuiverClient
import QuiverProtocol
import Testing

/// Prometheus text scraped from a real process, parsed into (name, labels) → value.
struct Scrape {
    var samples: [String: Double] = [:]
    var types: [String: String] = [:]

    init(_ text: String) throws {
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                throw LocalClusterError("unparseable metrics line: \(line)")
            }
            samples[String(line[..<space])] = value
        }
    }

    /// The sum of every sample of `name` whose labels include all of `labels`.
    func total(_ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { key, _ in
            guard key == name || key.hasPrefix(name + "{") else { return false }
            return labels.allSatisfy { key.contains("\($0.key)=\"\($0.value)\"") }
        }.values.reduce(0, +)
    }

    static func of(_ process: ServerProcess) async throws -> Scrape {
        let address = try process.loggedAddress(after: "metrics on http://")
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://\(address)/metrics")!)
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        #expect((response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Content-Type")?.hasPrefix("text/plain") == true)
        return try Scrape(String(decoding: data, as: UTF8.self))
    }
}

@Suite(.serialized) struct ObservabilityTests {
    @Test func metricsAndHealthOfRealProcesses() async throws {
        let cluster = try LocalCluster(binary: quiverBinary, workers: 2, security: .init(observability: true))
        defer { cluster.shutdown() }
        let data = try ClusterData(folder: cluster.importRoot, count: 2000, queries: 40)
        try await cluster.client { client in
            var settings = CollectionSettings(name: "docs", dimension: data.dimension, metric: .innerProduct)
            settings.nlist = 12
            _ = try await client.createCollection(settings)
            _ = try await client.train("docs", fromFile: data.basePath)
            try await client.load("docs", vectors: data.base.values, dimension: data.dimension)
            for _ in 0 ..< 3 { _ = try await client.search("docs", queries: data.queries.values, dimension: data.dimension, k: 5) }
            await expectCode(.notFound) { _ = try await client.search("nope", queries: data.queries.values, dimension: data.dimension, k: 5) }
        }
        let coordinator = try await Scrape.of(cluster.coordinator)
        #expect(coordinator.total("quiver_search_queries_total", ["collection": "docs"]) == 3 * 40)
        #expect(coordinator.total("quiver_search_duration_seconds_count", ["collection": "docs"]) == 3)
        #expect(coordinator.types["quiver_search_duration_seconds"] == "histogram")
        #expect(coordinator.total("quiver_load_rows_total", ["collection": "docs"]) == 2000)
        #expect(coordinator.total("quiver_load_bytes_total", ["collection": "docs"]) == Double(2000 * data.dimension * 4))
        #expect(coordinator.total("quiver_collection_vectors", ["collection": "docs"]) == 2000)
        #expect(coordinator.total("quiver_cluster_workers", ["health": "healthy"]) == 2)
        #expect(coordinator.total("quiver_rpc_requests_total", ["method": "CreateCollection", "code": "ok"]) == 1)
        #expect(coordinator.total("quiver_rpc_requests_total", ["method": "Train", "code": "ok"]) == 1)
        var vectors = 0.0
        var scanned = 0.0
        for worker in cluster.workers {
            let scrape = try await Scrape.of(worker)
            vectors += scrape.total("quiver_worker_vectors", ["collection": "docs"])
            scanned += scrape.total("quiver_worker_codes_scanned_total", ["collection": "docs"])
            #expect(scrape.total("quiver_worker_lists_owned", ["collection": "docs"]) > 0)
            #expect(scrape.total("quiver_worker_bytes", ["collection": "docs", "kind": "raw"]) > 0)
            #expect(scrape.total("quiver_rpc_requests_total", ["service": "quiver.v1.Worker", "method": "Stats", "code": "ok"]) > 0)
        }
        // Spilled second copies may live on the other worker, so the workers hold at least every row.
        #expect(vectors >= 2000)
        #expect(scanned > 0)

        // The plaintext health ports answer for the process and for its service.
        for (process, service) in [(cluster.coordinator!, "quiver.v1.Coordinator"), (cluster.workers[0], "quiver.v1.Worker")] {
            let address = try process.loggedAddress(after: "health on ")
            try await withHealthClient(address) { health in
                for name in ["", service] {
                    var check = Grpc_Health_V1_HealthCheckRequest()
                    check.service = name
                    let answer = try await health.check(check)
                    #expect(answer.status == .serving, "\(process.name) \(name)")
                }
                var unknown = Grpc_Health_V1_HealthCheckRequest()
                unknown.service = "no.such.Service"
                await expectCode(.notFound) { _ = try await health.check(unknown) }
            }
        }
    }
}
