import CQuiverKernels

/// How rows are compared with centroids when assigning and probing lists.
public enum CentroidComparison: Sendable {
    /// Squared L2 distance `‖x‖² − 2⟨x, c⟩ + ‖c‖²`.
    case l2
    /// Negated inner product `−⟨x, c⟩` (IP and cosine; with spherical centroids the ranking equals L2's).
    case innerProduct
}

/// Computes distances from blocks of rows to all centroids with the blocked GEMM kernel and hands
/// each block's `rows × centroids` distance matrix to `body`. Blocks run on up to `threads` threads.
func forEachCentroidDistanceBlock(
    rows: UnsafePointer<Float>, count: Int, dimension: Int,
    centroids: Matrix, centroidNorms: [Float], comparison: CentroidComparison,
    threads: Int, blockRows: Int = 128,
    _ body: (_ range: Range<Int>, _ distances: UnsafeMutablePointer<Float>, _ worker: Int) -> Void
) {
    let clusters = centroids.rows
    // A single query needs one row of scratch, not a whole block per thread.
    let blockRows = max(1, min(blockRows, count))
    let workers = max(1, min(threads, (count + blockRows - 1) / blockRows))
    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * blockRows * clusters)
    defer { scratch.deallocate() }
    let rowNorms: [Float] = comparison == .l2 ? Kernels.squaredNorms(rows, rows: count, dimension: dimension) : []
    centroids.values.withUnsafeBufferPointer { centroidValues in
        centroidNorms.withUnsafeBufferPointer { cNorms in
            rowNorms.withUnsafeBufferPointer { xNorms in
                parallelFor(count: count, threads: workers, chunk: blockRows) { range, worker in
                    let out = scratch + worker * blockRows * clusters
                    quiver_inner_products(rows + range.lowerBound * dimension, range.count,
                                          centroidValues.baseAddress!, clusters, dimension, out, clusters)
                    for (local, row) in range.enumerated() {
                        let line = out + local * clusters
                        switch comparison {
                        case .l2:
                            let xNorm = xNorms[row]
                            for c in 0 ..< clusters { line[c] = max(0, xNorm - 2 * line[c] + cNorms[c]) }
                        case .innerProduct:
                            for c in 0 ..< clusters { line[c] = -line[c] }
                        }
                    }
                    body(range, out, worker)
                }
            }
        }
    }
}

/// Index and value of the smallest of `count` distances (first one on ties).
@inline(__always)
func argmin(_ values: UnsafePointer<Float>, count: Int) -> (index: Int, value: Float) {
    var best = 0
    var bestValue = values[0]
    for i in 1 ..< max(1, count) where values[i] < bestValue {
        best = i
        bestValue = values[i]
    }
    return (best, bestValue)
}
