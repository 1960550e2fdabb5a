import Testing
@testable import QuiverIndex

@Suite struct QuantizationTests {
    let data = SyntheticData(count: 4000, queries: 0, dimension: 32, clusters: 30, seed: 11)

    func reconstructionError(_ pq: ProductQuantizer, _ vectors: Matrix) -> (error: Double, energy: Double) {
        var codes = [UInt8](repeating: 0, count: pq.subspaces)
        var decoded = [Float](repeating: 0, count: vectors.dimension)
        var error = 0.0, energy = 0.0
        vectors.values.withUnsafeBufferPointer { values in
            for row in 0 ..< vectors.rows {
                let x = values.baseAddress! + row * vectors.dimension
                codes.withUnsafeMutableBufferPointer { pq.encode(x, into: $0.baseAddress!) }
                decoded.withUnsafeMutableBufferPointer { out in codes.withUnsafeBufferPointer { pq.decode($0.baseAddress!, into: out.baseAddress!) } }
                for j in 0 ..< vectors.dimension {
                    error += Double((x[j] - decoded[j]) * (x[j] - decoded[j]))
                    energy += Double(x[j] * x[j])
                }
            }
        }
        return (error, energy)
    }

    @Test(arguments: [4, 8])
    func roundTripErrorIsBounded(bits: Int) {
        let pq = ProductQuantizer.train(residuals: data.base, subspaces: 16, bitsPerCode: bits, iterations: 10, seed: 1)
        let (error, energy) = reconstructionError(pq, data.base)
        // 2-dimensional subspaces with 16 (256) centers keep well under 10% (3%) of the energy.
        #expect(error / energy < (bits == 4 ? 0.10 : 0.03))
        // Encoding picks the nearest center: decoding then re-encoding is stable.
        var codes = [UInt8](repeating: 0, count: 16)
        var decoded = [Float](repeating: 0, count: 32)
        var again = [UInt8](repeating: 0, count: 16)
        data.base.values.withUnsafeBufferPointer { values in
            codes.withUnsafeMutableBufferPointer { pq.encode(values.baseAddress!, into: $0.baseAddress!) }
        }
        decoded.withUnsafeMutableBufferPointer { out in codes.withUnsafeBufferPointer { pq.decode($0.baseAddress!, into: out.baseAddress!) } }
        decoded.withUnsafeBufferPointer { d in again.withUnsafeMutableBufferPointer { pq.encode(d.baseAddress!, into: $0.baseAddress!) } }
        #expect(codes == again)
    }

    @Test func adcTablesMatchDecodedScores() {
        let pq = ProductQuantizer.train(residuals: data.base, subspaces: 8, bitsPerCode: 4, iterations: 5, seed: 2)
        var table = [Float](repeating: 0, count: 8 * 16)
        let query = Array(data.base[7])
        query.withUnsafeBufferPointer { q in table.withUnsafeMutableBufferPointer { pq.innerProductTable(q.baseAddress!, into: $0.baseAddress!) } }
        var codes = [UInt8](repeating: 0, count: 8)
        var decoded = [Float](repeating: 0, count: 32)
        data.base.values.withUnsafeBufferPointer { values in
            codes.withUnsafeMutableBufferPointer { pq.encode(values.baseAddress! + 100 * 32, into: $0.baseAddress!) }
        }
        decoded.withUnsafeMutableBufferPointer { out in codes.withUnsafeBufferPointer { pq.decode($0.baseAddress!, into: out.baseAddress!) } }
        let exact = zip(query, decoded).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        let adc = (0 ..< 8).reduce(Float(0)) { $0 + table[$1 * 16 + Int(codes[$1])] }
        #expect(abs(exact - adc) < 1e-3 * max(1, abs(exact)))
    }

    @Test func anisotropicRefinementNeverRaisesTheLoss() {
        let normalized = SyntheticData(count: 2000, queries: 0, dimension: 32, clusters: 10, normalize: true, seed: 5)
        let pq = ProductQuantizer.train(residuals: normalized.base, subspaces: 16, bitsPerCode: 4, iterations: 8, seed: 3)
        var scratch = [Float](repeating: 0, count: 2 * 16 * 16)
        var improvedSomewhere = false
        normalized.base.values.withUnsafeBufferPointer { values in
            for row in 0 ..< 300 {
                let x = values.baseAddress! + row * 32
                var nearest = [UInt8](repeating: 0, count: 16)
                nearest.withUnsafeMutableBufferPointer { pq.encode(x, into: $0.baseAddress!) }
                var refined = nearest
                for threshold: Float in [0.1, 0.2, 0.5] {
                    let eta = AnisotropicQuantization.parallelWeight(threshold: threshold, dimension: 32)
                    refined = nearest
                    refined.withUnsafeMutableBufferPointer { codes in
                        scratch.withUnsafeMutableBufferPointer {
                            AnisotropicQuantization.refine(quantizer: pq, residual: x, direction: x, parallelWeight: eta,
                                                           codes: codes.baseAddress!, scratch: $0.baseAddress!)
                        }
                    }
                    let before = AnisotropicQuantization.loss(quantizer: pq, residual: x, direction: x, parallelWeight: eta, codes: nearest)
                    let after = AnisotropicQuantization.loss(quantizer: pq, residual: x, direction: x, parallelWeight: eta, codes: refined)
                    #expect(after <= before * (1 + 1e-5) + 1e-7)
                    if after < before * 0.999 { improvedSomewhere = true }
                }
            }
        }
        #expect(improvedSomewhere)
    }

    @Test func parallelWeightFollowsTheFormulaForRelativeThresholds() {
        let eta = AnisotropicQuantization.parallelWeight(threshold: 0.2, dimension: 384)
        #expect(abs(eta - 383 * 0.04 / 0.96) < 1e-3)
        // Outside (0, 1) there is no weighting rather than a pole or a negative weight.
        for outside: Float in [0, -0.5, 1, 3, .infinity, .nan] {
            #expect(AnisotropicQuantization.parallelWeight(threshold: outside, dimension: 384) == 1)
        }
        #expect(AnisotropicQuantization.parallelWeight(threshold: 0.999, dimension: 384).isFinite)
    }

    @Test func theThresholdIsAFractionOfEachVectorsNorm() throws {
        // Codes do not depend on the data's scale: scaling a collection by 13 encodes it the
        // same (up to float rounding at a handful of near-ties), unlike an absolute threshold.
        let data = SyntheticData(count: 3000, queries: 0, dimension: 32, clusters: 10, normalize: true, seed: 6)
        var scaled = data.base
        for i in scaled.values.indices { scaled.values[i] *= 13 }
        let configuration = IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 8, anisotropicThreshold: 0.2)
        let model = try IVFModel.train(sample: data.base, configuration: configuration)
        var scaledCentroids = model.centroids
        for i in scaledCentroids.values.indices { scaledCentroids.values[i] *= 13 }
        let scaledQuantizer = ProductQuantizer(dimension: 32, subspaces: model.quantizer!.subspaces, bitsPerCode: 4,
                                               codebooks: model.quantizer!.codebooks.map { $0 * 13 })
        let scaledModel = IVFModel(configuration: configuration, centroids: scaledCentroids, quantizer: scaledQuantizer)
        let assignment = model.assign(data.base)
        let plain = try IVFIndex(model: model).encode(prepared: data.base, ids: (0 ..< 3000).map(Int64.init), assignment: assignment)
        let big = try IVFIndex(model: scaledModel).encode(prepared: scaled, ids: (0 ..< 3000).map(Int64.init), assignment: assignment)
        let differing = zip(plain.primaryCodes, big.primaryCodes).filter { $0 != $1 }.count
        #expect(differing <= plain.primaryCodes.count / 200, "\(differing) of \(plain.primaryCodes.count) codes differ")
        #expect(throws: IndexError.self) {
            try IVFConfiguration(dimension: 32, metric: .innerProduct, nlist: 8, anisotropicThreshold: 1).validate()
        }
    }

    @Test func quantizedLUTCannotOverflowSixteenBits() {
        for (subspaces, spread) in [(192, Float(1)), (300, Float(1000)), (1024, Float(1e-3)), (4, Float(0))] {
            var generator = SeededGenerator(seed: UInt64(subspaces))
            let table = (0 ..< subspaces * 16).map { _ in Float.random(in: -spread ... spread, using: &generator) }
            var lut = [UInt8](repeating: 0, count: (subspaces + 1) * 16)
            let (scale, bias) = table.withUnsafeBufferPointer { t in
                lut.withUnsafeMutableBufferPointer { quantizeLUT(t.baseAddress!, subspaces: subspaces, paddedSubspaces: subspaces + 1, into: $0.baseAddress!) }
            }
            var worst = 0
            for s in 0 ..< subspaces { worst += Int(lut[s * 16 ..< (s + 1) * 16].max()!) }
            #expect(worst <= 65535)
            #expect(lut[subspaces * 16 ..< (subspaces + 1) * 16].allSatisfy { $0 == 0 })
            // Dequantized entries approximate the table within one quantization step.
            if spread > 0 {
                for s in 0 ..< subspaces {
                    let low = table[s * 16 ..< (s + 1) * 16].min()!
                    for c in 0 ..< 16 {
                        let approx = Float(lut[s * 16 + c]) / scale + low
                        #expect(abs(approx - table[s * 16 + c]) <= 0.5001 / scale)
                    }
                }
                _ = bias
            }
        }
    }
}
