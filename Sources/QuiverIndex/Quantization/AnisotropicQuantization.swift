/// Score-aware quantization for maximum inner product search (ScaNN, arXiv 1908.10396).
///
/// For a datapoint x, quantization error parallel to x changes ⟨q, x⟩ for the queries that
/// matter far more than orthogonal error, so codes are chosen to minimise
/// `η·‖e∥‖² + ‖e⊥‖² = ‖e‖² + (η − 1)·⟨e, x̂⟩²` with `e = r − r̃` the residual's quantization error.
public enum AnisotropicQuantization {
    /// `η = (d − 1) · (T²/‖x‖²) / (1 − T²/‖x‖²)`; points whose norm does not exceed the threshold
    /// get a large finite weight instead of a pole.
    public static func parallelWeight(squaredNorm: Float, threshold: Float, dimension: Int) -> Float {
        guard squaredNorm > 0 else { return 1 }
        let ratio = min(threshold * threshold / squaredNorm, 0.999)
        return max(1, Float(dimension - 1) * ratio / (1 - ratio))
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
                              maxPasses: Int = 4) {
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
