import CQuiverKernels

/// Exact search over all vectors: blocked GEMM between query and base blocks, one heap per
/// query. Gives ground truth and serves small collections.
public struct FlatIndex: Sendable {
    public let dimension: Int
    public let metric: Metric
    public private(set) var vectors: Matrix
    public private(set) var ids: [Int64]
    private var norms: [Float]

    public init(dimension: Int, metric: Metric) {
        self.dimension = dimension
        self.metric = metric
        vectors = Matrix(rows: 0, dimension: dimension, values: [])
        ids = []
        norms = []
    }

    public var count: Int { vectors.rows }
    public var memoryBytes: Int { vectors.values.count * 4 + ids.count * 8 + norms.count * 4 }

    public mutating func add(_ batch: Matrix, ids newIDs: [Int64]? = nil) throws(IndexError) {
        guard batch.dimension == dimension else { throw .dimensionMismatch(expected: dimension, got: batch.dimension) }
        try IVFIndex.checkFinite(batch)
        var prepared = batch
        if metric.normalizesInput { prepared.normalizeRows() }
        let first = vectors.rows
        vectors.append(contentsOf: prepared)
        norms.append(contentsOf: Kernels.squaredNorms(prepared))
        ids.append(contentsOf: newIDs ?? (0 ..< batch.rows).map { Int64(first + $0) })
    }

    public func search(_ queries: Matrix, k: Int, threads: Int = 1) throws(IndexError) -> SearchResults {
        guard queries.dimension == dimension else { throw .dimensionMismatch(expected: dimension, got: queries.dimension) }
        guard k > 0 else { throw .invalidParameter("k must be positive, got \(k)") }
        try IVFIndex.checkFinite(queries)
        var prepared = queries
        if metric.normalizesInput { prepared.normalizeRows() }
        let queryBlock = 32
        let baseBlock = 2048
        let n = count
        var results = SearchResults(queryCount: queries.rows, k: k)
        results.ids.withUnsafeMutableBufferPointer { outIds in
            results.distances.withUnsafeMutableBufferPointer { outDistances in
                let output = UncheckedSendable((outIds.baseAddress!, outDistances.baseAddress!))
                prepared.values.withUnsafeBufferPointer { q in
                    vectors.values.withUnsafeBufferPointer { base in
                        norms.withUnsafeBufferPointer { norms in
                            parallelFor(count: prepared.rows, threads: threads, chunk: queryBlock) { range, _ in
                                let scores = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * baseBlock)
                                defer { scores.deallocate() }
                                let heaps = (0 ..< range.count).map { _ in TopKBox(capacity: k) }
                                var start = 0
                                while start < n {
                                    let rows = min(baseBlock, n - start)
                                    quiver_inner_products(q.baseAddress! + range.lowerBound * dimension, range.count,
                                                          base.baseAddress! + start * dimension, rows, dimension, scores, rows)
                                    for local in 0 ..< range.count {
                                        let line = scores + local * rows
                                        heaps[local].offer(line, count: rows, first: start, norms: norms, l2: !metric.usesInnerProduct)
                                    }
                                    start += rows
                                }
                                for (local, query) in range.enumerated() {
                                    var correction: Float = 0
                                    if !metric.usesInnerProduct {
                                        let qp = q.baseAddress! + query * dimension
                                        correction = quiver_dot(qp, qp, dimension)
                                    }
                                    heaps[local].heap.drainSorted(into: output.value.1 + query * k, output.value.0 + query * k, slots: k)
                                    for i in query * k ..< (query + 1) * k where output.value.0[i] >= 0 {
                                        output.value.0[i] = ids[Int(output.value.0[i])]
                                        output.value.1[i] += correction
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return results
    }
}

/// A heap that can live in an array (TopK itself is non-copyable).
private final class TopKBox {
    var heap: TopK
    init(capacity: Int) { heap = TopK(capacity: capacity) }

    /// Offers a block of inner products; for L2 the distance without the query norm
    /// (`‖x‖² − 2⟨q, x⟩`), which ranks the same.
    func offer(_ products: UnsafePointer<Float>, count: Int, first: Int, norms: UnsafeBufferPointer<Float>, l2: Bool) {
        var threshold = heap.threshold
        for i in 0 ..< count {
            let distance = l2 ? norms[first + i] - 2 * products[i] : -products[i]
            if distance <= threshold {
                heap.push(distance: distance, id: Int64(first + i))
                threshold = heap.threshold
            }
        }
    }
}
