/// Score-aware quantization for maximum inner product search (ScaNN, arXiv 1908.10396).
///
/// For a datapoint x, quantization error parallel to x changes ⟨q, x⟩ for the queries that
/// matter far more than orthogonal error, so codes are chosen to minimise
/// `η·‖e∥‖² + ‖e⊥‖² = ‖e‖² + (η − 1)·⟨e, x̂⟩²` with `e = r − r̃` the residual's quantization error.
public enum AnisotropicQuantization {
    /// Coordinate-descent passes over the subspaces (8-bit codes); a pass that changes nothing
    /// ends it earlier.
    public static let maxPasses = 4
    /// Steps of the 4-bit kernel's search for its multiplier (`quiver_pq4_encode`). On pkgdesc
    /// residuals: 2 steps reach the mean loss of 4 coordinate-descent passes (0.07565), 3 steps
    /// 0.07564, 4 steps 0.07563, each step ≈ 0.3 µs a vector on AVX2.
    public static let searchSteps = 3

    /// `η = (d − 1) · t² / (1 − t²)` for the relative threshold `t` (0 < t < 1).
    ///
    /// ScaNN's threshold `T` is absolute (`t = T/‖x‖`), so one `T` means a different weight at
    /// every scale: on data of norm ≈ 13 the usual T = 0.1 gives η ≈ 1 (score-aware quantization
    /// silently off), and as ‖x‖ approaches T the weight has a pole. Quiver's threshold is a
    /// fraction of each vector's own norm, which gives every vector the same weight. Measured
    /// against T scaled by the data's median norm (which follows ScaNN's per-vector weighting):
    /// equal on clustered 128-d data, better by 1–2.5 points of recall@10 on pkgdesc rows
    /// with log-normal norms, where the per-vector weighting was worse than plain PQ
    /// (bench/results/anisotropic.md).
    public static func parallelWeight(threshold t: Float, dimension: Int) -> Float {
        guard t > 0, t < 1 else { return 1 }
        return max(1, Float(dimension - 1) * t * t / (1 - t * t))
    }

    /// The anisotropic loss of `codes` for residual `residual` of the datapoint with unit
    /// direction `direction`.
    public static func loss(quantizer: ProductQuantizer, residual: UnsafePointer<Float>,
                            direction: UnsafePointer<Float>, parallelWeight eta: Float,
                            codes: UnsafePointer<UInt8>) -> Float {
        let dimension = quantizer.dimension
        var decoded = [Float](repeating: 0, count: dimension)
        decoded.withUnsafeMutableBufferPointer { quantizer.decode(codes, into: $0.baseAddress!) }
        var squared: Float = 0
        var parallel: Float = 0
        for j in 0 ..< dimension {
            let error = residual[j] - decoded[j]
            squared += error * error
            parallel += error * direction[j]
        }
        return squared + (eta - 1) * parallel * parallel
    }

    /// Coordinate descent from the codes already in `codes` (normally the nearest centers):
    /// each pass revisits every subspace and takes the center that lowers the loss most, if any;
    /// stops when a pass changes nothing. Never raises the loss.
    /// - Parameter scratch: at least `2 × subspaces × centersPerSubspace` floats.
    public static func refine(quantizer: ProductQuantizer, residual: UnsafePointer<Float>,
                              direction: UnsafePointer<Float>, parallelWeight eta: Float,
                              codes: UnsafeMutablePointer<UInt8>, scratch: UnsafeMutablePointer<Float>,
                              maxPasses: Int = AnisotropicQuantization.maxPasses) {
        let subspaces = quantizer.subspaces
        let centers = quantizer.centersPerSubspace
        let subDimension = quantizer.subspaceDimension
        // errorNorm[s][c] = ‖r_s − c‖², errorProjection[s][c] = ⟨r_s − c, x̂_s⟩: the loss of any
        // code choice is assembled from these without touching the vectors again.
        let errorNorm = scratch
        let errorProjection = scratch + subspaces * centers
        quantizer.codebooks.withUnsafeBufferPointer { book in
            var center = book.baseAddress!
            for s in 0 ..< subspaces {
                let r = residual + s * subDimension
                let x = direction + s * subDimension
                for c in 0 ..< centers {
                    var norm: Float = 0
                    var projection: Float = 0
                    for j in 0 ..< subDimension {
                        let error = r[j] - center[j]
                        norm += error * error
                        projection += error * x[j]
                    }
                    errorNorm[s * centers + c] = norm
                    errorProjection[s * centers + c] = projection
                    center += subDimension
                }
            }
        }
        var squared: Float = 0
        var parallel: Float = 0
        for s in 0 ..< subspaces {
            squared += errorNorm[s * centers + Int(codes[s])]
            parallel += errorProjection[s * centers + Int(codes[s])]
        }
        let weight = eta - 1
        for _ in 0 ..< maxPasses {
            var changed = false
            for s in 0 ..< subspaces {
                let current = Int(codes[s])
                let row = s * centers
                let baseSquared = squared - errorNorm[row + current]
                let baseParallel = parallel - errorProjection[row + current]
                var best = current
                var bestLoss = squared + weight * parallel * parallel
                for c in 0 ..< centers where c != current {
                    let p = baseParallel + errorProjection[row + c]
                    let candidate = baseSquared + errorNorm[row + c] + weight * p * p
                    if candidate < bestLoss {
                        bestLoss = candidate
                        best = c
                    }
                }
                if best != current {
                    codes[s] = UInt8(truncatingIfNeeded: best)
                    squared = baseSquared + errorNorm[row + best]
                    parallel = baseParallel + errorProjection[row + best]
                    changed = true
                }
            }
            if !changed { break }
        }
    }
}
