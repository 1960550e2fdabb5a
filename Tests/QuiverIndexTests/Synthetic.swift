import QuiverIndex

/// Seeded Gaussian-mixture data: `clusters` centers, points spread around them, optionally
/// normalised, with exact ground truth from the flat index.
struct SyntheticData {
    let base: Matrix
    let queries: Matrix

    init(count: Int, queries queryCount: Int, dimension: Int, clusters: Int, spread: Float = 0.35,
         normalize: Bool = false, seed: UInt64 = 7) {
        var generator = SeededGenerator(seed: seed)
        let centers = (0 ..< clusters * dimension).map { _ in Self.gaussian(&generator) }
        func draw(_ n: Int) -> Matrix {
            var values = [Float]()
            values.reserveCapacity(n * dimension)
            for _ in 0 ..< n {
                let c = Int.random(in: 0 ..< clusters, using: &generator)
                for j in 0 ..< dimension { values.append(centers[c * dimension + j] + spread * Self.gaussian(&generator)) }
            }
            var matrix = Matrix(rows: n, dimension: dimension, values: values)
            if normalize { matrix.normalizeRows() }
            return matrix
        }
        base = draw(count)
        queries = draw(queryCount)
    }

    static func gaussian(_ generator: inout SeededGenerator) -> Float {
        let u1 = max(Float.random(in: 0 ..< 1, using: &generator), 1e-7)
        let u2 = Float.random(in: 0 ..< 1, using: &generator)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    func groundTruth(metric: Metric, k: Int) throws -> [Int64] {
        var flat = FlatIndex(dimension: base.dimension, metric: metric)
        try flat.add(base)
        return try flat.search(queries, k: k).ids
    }
}

#if canImport(Glibc)
import Glibc
#endif
