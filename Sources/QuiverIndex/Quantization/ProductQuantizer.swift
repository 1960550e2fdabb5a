import CQuiverKernels

/// Product quantization: the vector (here always a residual against its list centroid) is cut
/// into `subspaces` sub-vectors, each replaced by the id of the nearest of `centersPerSubspace`
/// codebook centers. Scores against a query become sums of per-subspace table entries (ADC).
public struct ProductQuantizer: Sendable, Equatable {
    public let dimension: Int
    public let subspaces: Int
    /// 4 (16 centers, FastScan) or 8 (256 centers).
    public let bitsPerCode: Int
    /// `subspaces × centersPerSubspace × subspaceDimension` floats.
    public let codebooks: [Float]
    /// 4-bit only: each subspace's codebook dimension-major (`[s][j][c]`), the layout the SIMD
    /// table kernel reads, and the squared norm of every center (`[s][c]`) for L2 tables.
    let transposedCodebooks: [Float]
    let centerNorms: [Float]
    /// 4-bit only: the codebooks in the encoder's layout (`quiver_pq4_encoding_book`).
    let encodingBook: [Float]

    public var centersPerSubspace: Int { 1 << bitsPerCode }
    public var subspaceDimension: Int { dimension / subspaces }

    public init(dimension: Int, subspaces: Int, bitsPerCode: Int, codebooks: [Float]) {
        precondition(subspaces > 0 && dimension % subspaces == 0, "dimension \(dimension) is not divisible by \(subspaces) subspaces")
        precondition(bitsPerCode == 4 || bitsPerCode == 8, "PQ codes are 4 or 8 bits")
        precondition(codebooks.count == dimension << bitsPerCode, "codebook size does not match the shape")
        self.dimension = dimension
        self.subspaces = subspaces
        self.bitsPerCode = bitsPerCode
        self.codebooks = codebooks
        let centers = 1 << bitsPerCode
        let subDimension = dimension / subspaces
        var transposed = [Float](repeating: 0, count: bitsPerCode == 4 ? codebooks.count : 0)
        var norms = [Float](repeating: 0, count: bitsPerCode == 4 ? subspaces * centers : 0)
        if bitsPerCode == 4 {
            for s in 0 ..< subspaces {
                for c in 0 ..< centers {
                    for j in 0 ..< subDimension {
                        let value = codebooks[(s * centers + c) * subDimension + j]
                        transposed[(s * subDimension + j) * centers + c] = value
                        norms[s * centers + c] += value * value
                    }
                }
            }
        }
        transposedCodebooks = transposed
        centerNorms = norms
        var book = [Float](repeating: 0, count: bitsPerCode == 4 ? quiver_pq4_book_size(subspaces, subDimension) : 0)
        if bitsPerCode == 4 { quiver_pq4_encoding_book(transposed, subspaces, subDimension, &book) }
        encodingBook = book
    }

    public static func == (lhs: ProductQuantizer, rhs: ProductQuantizer) -> Bool {
        lhs.dimension == rhs.dimension && lhs.subspaces == rhs.subspaces && lhs.bitsPerCode == rhs.bitsPerCode
            && lhs.codebooks == rhs.codebooks
    }

    /// 4-bit distance table for FastScan: −⟨q_s, c⟩ (inner product) or ‖q_s − c‖² (L2), SIMD.
    public func fastScanTable(_ query: UnsafePointer<Float>, l2: Bool, into table: UnsafeMutablePointer<Float>) {
        precondition(bitsPerCode == 4)
        transposedCodebooks.withUnsafeBufferPointer { transposed in
            centerNorms.withUnsafeBufferPointer { norms in
                quiver_pq4_table(query, transposed.baseAddress!, l2 ? norms.baseAddress! : nil, subspaces, subspaceDimension, table)
            }
        }
    }

    /// Scratch floats `encode4` needs.
    public var encodingScratchCount: Int { bitsPerCode == 4 ? quiver_pq4_encode_scratch_size(subspaces, subspaceDimension) : 0 }

    /// 4-bit encoding in the C kernel: each subspace's nearest center or, with `direction` (the
    /// datapoint's unit vector) and `parallelWeight` η > 1, score-aware codes
    /// (`AnisotropicQuantization.searchSteps`). `scratch` holds `encodingScratchCount` floats.
    public func encode4(_ residual: UnsafePointer<Float>, direction: UnsafePointer<Float>?, parallelWeight eta: Float,
                        into codes: UnsafeMutablePointer<UInt8>, scratch: UnsafeMutablePointer<Float>) {
        precondition(bitsPerCode == 4)
        encodingBook.withUnsafeBufferPointer { book in
            quiver_pq4_encode(residual, direction, eta, book.baseAddress!, subspaces, subspaceDimension,
                              Int32(AnisotropicQuantization.searchSteps), codes, scratch)
        }
    }

    /// Trains one codebook per subspace by k-means on the sub-vectors of `residuals`.
    public static func train(residuals: Matrix, subspaces: Int, bitsPerCode: Int,
                             iterations: Int = 20, seed: UInt64 = 1, threads: Int = 1) -> ProductQuantizer {
        let dimension = residuals.dimension
        precondition(dimension % subspaces == 0, "dimension \(dimension) is not divisible by \(subspaces) subspaces")
        let centers = 1 << bitsPerCode
        let subDimension = dimension / subspaces
        var codebooks = [Float](repeating: 0, count: dimension * centers)
        let sampleRows = min(residuals.rows, 256 * centers)
        var generator = SeededGenerator(seed: seed)
        let rows = uniformSample(population: residuals.rows, sampleSize: sampleRows, generator: &generator)
        let seeds = (0 ..< subspaces).map { _ in generator.next() }
        codebooks.withUnsafeMutableBufferPointer { codebookBuffer in
            let output = UncheckedSendable(codebookBuffer.baseAddress!)
            parallelFor(count: subspaces, threads: threads) { range, _ in
                for subspace in range {
                    var sub = [Float]()
                    sub.reserveCapacity(rows.count * subDimension)
                    residuals.values.withUnsafeBufferPointer { values in
                        for row in rows {
                            let start = row * dimension + subspace * subDimension
                            sub.append(contentsOf: values[start ..< start + subDimension])
                        }
                    }
                    let points = Matrix(rows: rows.count, dimension: subDimension, values: sub)
                    let clusters = min(centers, points.rows)
                    let result = KMeans.train(points, configuration: .init(
                        clusters: clusters, iterations: iterations, seed: seeds[subspace], threads: 1))
                    let target = output.value + subspace * centers * subDimension
                    for (i, value) in result.centroids.values.enumerated() { target[i] = value }
                }
            }
        }
        return ProductQuantizer(dimension: dimension, subspaces: subspaces, bitsPerCode: bitsPerCode, codebooks: codebooks)
    }

    /// Writes the nearest center of each subspace (one code per byte, `subspaces` bytes).
    public func encode(_ vector: UnsafePointer<Float>, into codes: UnsafeMutablePointer<UInt8>) {
        let subDimension = subspaceDimension
        let centers = centersPerSubspace
        codebooks.withUnsafeBufferPointer { book in
            for s in 0 ..< subspaces {
                let sub = vector + s * subDimension
                let base = book.baseAddress! + s * centers * subDimension
                var best = 0
                var bestDistance = Float.infinity
                for c in 0 ..< centers {
                    let center = base + c * subDimension
                    var distance: Float = 0
                    for j in 0 ..< subDimension {
                        let diff = sub[j] - center[j]
                        distance += diff * diff
                    }
                    if distance < bestDistance {
                        bestDistance = distance
                        best = c
                    }
                }
                codes[s] = UInt8(truncatingIfNeeded: best)
            }
        }
    }

    /// Reconstructs the vector from its codes.
    public func decode(_ codes: UnsafePointer<UInt8>, into vector: UnsafeMutablePointer<Float>) {
        let subDimension = subspaceDimension
        let centers = centersPerSubspace
        codebooks.withUnsafeBufferPointer { book in
            for s in 0 ..< subspaces {
                let center = book.baseAddress! + (s * centers + Int(codes[s])) * subDimension
                for j in 0 ..< subDimension { vector[s * subDimension + j] = center[j] }
            }
        }
    }

    /// `table[s * centers + c] = ⟨query_s, center_{s,c}⟩`.
    public func innerProductTable(_ query: UnsafePointer<Float>, into table: UnsafeMutablePointer<Float>) {
        let subDimension = subspaceDimension
        let centers = centersPerSubspace
        codebooks.withUnsafeBufferPointer { book in
            var center = book.baseAddress!
            for s in 0 ..< subspaces {
                let sub = query + s * subDimension
                for c in 0 ..< centers {
                    var sum: Float = 0
                    for j in 0 ..< subDimension { sum += sub[j] * center[j] }
                    table[s * centers + c] = sum
                    center += subDimension
                }
            }
        }
    }

    /// `table[s * centers + c] = ‖query_s − center_{s,c}‖²`.
    public func l2Table(_ query: UnsafePointer<Float>, into table: UnsafeMutablePointer<Float>) {
        let subDimension = subspaceDimension
        let centers = centersPerSubspace
        codebooks.withUnsafeBufferPointer { book in
            var center = book.baseAddress!
            for s in 0 ..< subspaces {
                let sub = query + s * subDimension
                for c in 0 ..< centers {
                    var sum: Float = 0
                    for j in 0 ..< subDimension {
                        let diff = sub[j] - center[j]
                        sum += diff * diff
                    }
                    table[s * centers + c] = sum
                    center += subDimension
                }
            }
        }
    }
}
