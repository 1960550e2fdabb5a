/// Encodes a vector's residual against a list centroid with the model's PQ, using score-aware
/// (anisotropic) assignment when the model asks for it. Holds per-thread scratch space.
struct ResidualEncoder {
    let model: IVFModel
    private var residual: [Float]
    private var direction: [Float]
    private var scratch: [Float]

    init(model: IVFModel) {
        self.model = model
        residual = [Float](repeating: 0, count: model.dimension)
        direction = [Float](repeating: 0, count: model.dimension)
        let quantizer = model.quantizer
        // 2·m·centers floats for the 8-bit refinement, 32·m for the 4-bit kernel.
        scratch = [Float](repeating: 0, count: max(2 * (quantizer?.subspaces ?? 0) * (quantizer?.centersPerSubspace ?? 0),
                                                   quantizer?.encodingScratchCount ?? 0))
    }

    /// Writes `paddedSubspaces` codes (FastScan) or `subspaces` codes (PQ8) to `codes`.
    mutating func encode(_ vector: UnsafePointer<Float>, list: Int, into codes: UnsafeMutablePointer<UInt8>) {
        guard let quantizer = model.quantizer else { return }
        let d = model.dimension
        let configuration = model.configuration
        residual.withUnsafeMutableBufferPointer { residual in
            model.centroids.values.withUnsafeBufferPointer { centroids in
                let centroid = centroids.baseAddress! + list * d
                for j in 0 ..< d { residual[j] = vector[j] - centroid[j] }
            }
            // The parallel direction is the datapoint's own: its score error is what matters.
            var eta: Float = 1
            if let threshold = configuration.anisotropicThreshold {
                var squaredNorm: Float = 0
                for j in 0 ..< d { squaredNorm += vector[j] * vector[j] }
                if squaredNorm > 0 {
                    let inverseNorm = 1 / squaredNorm.squareRoot()
                    direction.withUnsafeMutableBufferPointer { direction in
                        for j in 0 ..< d { direction[j] = vector[j] * inverseNorm }
                    }
                    eta = AnisotropicQuantization.parallelWeight(threshold: threshold, dimension: d)
                }
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

