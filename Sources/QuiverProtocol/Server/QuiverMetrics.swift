import CoreMetrics
import GRPCCore
import Prometheus

/// The metrics Quiver processes export (Prometheus text format on `--metrics-listen`), recorded
/// through swift-metrics. Every name is defined here, once; `deploy/grafana` charts them.
public enum QuiverMetrics {
    // Coordinator
    public static let searchDuration = "quiver_search_duration_seconds"
    public static let searchQueries = "quiver_search_queries_total"
    public static let searchPartial = "quiver_search_partial_total"
    /// Probe-scatter-merge rounds; queries per round shows how far concurrent searches coalesce.
    public static let searchScatters = "quiver_search_scatters_total"
    public static let loadRows = "quiver_load_rows_total"
    public static let loadBytes = "quiver_load_bytes_total"
    public static let clusterWorkers = "quiver_cluster_workers"
    public static let collectionVectors = "quiver_collection_vectors"
    // Workers
    public static let listsScanned = "quiver_worker_lists_scanned_total"
    public static let codesScanned = "quiver_worker_codes_scanned_total"
    public static let candidatesReranked = "quiver_worker_candidates_reranked_total"
    public static let workerVectors = "quiver_worker_vectors"
    public static let workerBytes = "quiver_worker_bytes"
    public static let workerListsOwned = "quiver_worker_lists_owned"
    // Both
    public static let rpcRequests = "quiver_rpc_requests_total"

    /// Search latency buckets, from a single cached query (tens of µs) to a big batch (seconds).
    static let searchBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// Routes swift-metrics to a Prometheus registry (once per process) and returns it.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[searchDuration] = searchBuckets
        MetricsSystem.bootstrap(factory)
        return registry
    }
}

/// Counts every call by service, method and the status it ended with.
public struct RPCMetricsInterceptor: ServerInterceptor {
    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let descriptor = context.descriptor
        let count: @Sendable (RPCError.Code?) -> Void = { code in
            Counter(label: QuiverMetrics.rpcRequests, dimensions: [
                ("service", descriptor.service.fullyQualifiedService), ("method", descriptor.method),
                ("code", code.map { "\($0)" } ?? "ok"),
            ]).increment()
        }
        let response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            count((error as? RPCError)?.code ?? .unknown)
            throw error
        }
        switch response.accepted {
        case .failure(let error):
            count(error.code)
            return response
        case .success(var contents):
            let producer = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await producer(writer)
                    count(nil)
                    return trailers
                } catch {
                    count((error as? RPCError)?.code ?? .unknown)
                    throw error
                }
            }
            return StreamingServerResponse(accepted: .success(contents))
        }
    }
}
