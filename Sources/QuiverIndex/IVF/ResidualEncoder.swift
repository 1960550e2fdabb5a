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
        scratch = [Float](repeating: 0, count: 2 * (quantizer?.subspaces ?? 0) * (quantizer?.centersPerSubspace ?? 0))
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
            quantizer.encode(residual.baseAddress!, into: codes)
            guard let threshold = configuration.anisotropicThreshold else { return }
            // The parallel direction is the datapoint's own: its score error is what matters.
            var squaredNorm: Float = 0
            for j in 0 ..< d { squaredNorm += vector[j] * vector[j] }
            guard squaredNorm > 0 else { return }
            let inverseNorm = 1 / squaredNorm.squareRoot()
            direction.withUnsafeMutableBufferPointer { direction in
                for j in 0 ..< d { direction[j] = vector[j] * inverseNorm }
                let eta = AnisotropicQuantization.parallelWeight(squaredNorm: squaredNorm, threshold: threshold, dimension: d)
                scratch.withUnsafeMutableBufferPointer { scratch in
                    AnisotropicQuantization.refine(quantizer: quantizer, residual: residual.baseAddress!,
                                                   direction: direction.baseAddress!, parallelWeight: eta,
                                                   codes: codes, scratch: scratch.baseAddress!)
                }
            }
        }
        if configuration.encoding == .fastScan && configuration.paddedSubspaces > configuration.subspaces {
            codes[configuration.subspaces] = 0
        }
    }
}
