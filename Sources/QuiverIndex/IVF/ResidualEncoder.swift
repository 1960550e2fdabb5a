import CQuiverKernels

/// Encodes a vector's residual against a list centroid with the model's PQ, using score-aware
/// (anisotropic) assignment when the model asks for it. Holds per-thread scratch space.
struct ResidualEncoder {
    let model: IVFModel
    private var residual: [Float]
    private var direction: [Float]
    private var scratch: [Float]
    /// η for the row set by `setRow`: 1 (plain PQ) unless the model is score-aware and the row
    /// is not zero.
    private var eta: Float = 1
    private let parallelWeight: Float?

    init(model: IVFModel) {
        self.model = model
        residual = [Float](repeating: 0, count: model.dimension)
        direction = [Float](repeating: 0, count: model.dimension)
        let quantizer = model.quantizer
        // 2·m·centers floats for the 8-bit refinement, the 4-bit kernel's own count.
        scratch = [Float](repeating: 0, count: max(2 * (quantizer?.subspaces ?? 0) * (quantizer?.centersPerSubspace ?? 0),
                                                   quantizer?.encodingScratchCount ?? 0))
        parallelWeight = model.configuration.anisotropicThreshold.map {
            AnisotropicQuantization.parallelWeight(threshold: $0, dimension: model.dimension)
        }
    }

    /// Takes the row the next `encode` calls encode (a row and its spilled copy share it): the
    /// parallel direction is the datapoint's own, since its score error is what matters.
    mutating func setRow(_ vector: UnsafePointer<Float>) {
        eta = 1
        guard let parallelWeight, parallelWeight > 1, model.quantizer != nil else { return }
        let d = model.dimension
        var squaredNorm: Float = 0
        quiver_squared_norms(vector, 1, d, &squaredNorm)
        guard squaredNorm > 0 else { return }
        let inverseNorm = 1 / squaredNorm.squareRoot()
        direction.withUnsafeMutableBufferPointer { direction in
            for j in 0 ..< d { direction[j] = vector[j] * inverseNorm }
        }
        eta = parallelWeight
    }

    /// Writes `paddedSubspaces` codes (FastScan) or `subspaces` codes (PQ8) for `vector` (the row
    /// last given to `setRow`) in `list` to `codes`.
    mutating func encode(_ vector: UnsafePointer<Float>, list: Int, into codes: UnsafeMutablePointer<UInt8>) {
        guard let quantizer = model.quantizer else { return }
        let d = model.dimension
        let configuration = model.configuration
        let eta = eta
        residual.withUnsafeMutableBufferPointer { residual in
            model.centroids.values.withUnsafeBufferPointer { centroids in
                let centroid = centroids.baseAddress! + list * d
                for j in 0 ..< d { residual[j] = vector[j] - centroid[j] }
            }
            direction.withUnsafeBufferPointer { direction in
                scratch.withUnsafeMutableBufferPointer { scratch in
                    if quantizer.bitsPerCode == 4 {
                        quantizer.encode4(residual.baseAddress!, direction: eta > 1 ? direction.baseAddress! : nil,
                                          parallelWeight: eta, into: codes, scratch: scratch.baseAddress!)
                    } else {
                        quantizer.encode(residual.baseAddress!, into: codes)
                        if eta > 1 {
                            AnisotropicQuantization.refine(quantizer: quantizer, residual: residual.baseAddress!,
                                                           direction: direction.baseAddress!, parallelWeight: eta,
                                                           codes: codes, scratch: scratch.baseAddress!)
                        }
                    }
                }
            }
        }
        if configuration.encoding == .fastScan && configuration.paddedSubspaces > configuration.subspaces {
            codes[configuration.subspaces] = 0
        }
    }
}
