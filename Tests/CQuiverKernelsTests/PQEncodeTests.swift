import CQuiverKernels
import Testing

@Suite struct PQ4Encoding {
    struct Case {
        let m: Int, dsub: Int
        let transposed: [Float]
        let residual: [Float]
        let direction: [Float]
    }

    static func randomCase(m: Int, dsub: Int, using rng: inout TestRandom) -> Case {
        let d = m * dsub
        let transposed = (0..<d * 16).map { _ in Float.random(in: -1...1, using: &rng) }
        let residual = (0..<d).map { _ in Float.random(in: -1...1, using: &rng) }
        var direction = (0..<d).map { _ in Float.random(in: -1...1, using: &rng) }
        let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
        direction = direction.map { $0 / norm }
        return Case(m: m, dsub: dsub, transposed: transposed, residual: residual, direction: direction)
    }

    func encode(_ isa: quiver_isa, _ c: Case, eta: Float, anisotropic: Bool) -> [UInt8] {
        var codes = [UInt8](repeating: 0xFF, count: c.m)
        var scratch = [Float](repeating: 0, count: 32 * c.m)
        c.direction.withUnsafeBufferPointer { direction in
            quiver_pq4_encode_isa(isa, c.residual, anisotropic ? direction.baseAddress : nil, eta, c.transposed,
                                  c.m, c.dsub, 4, &codes, &scratch)
        }
        return codes
    }

    /// ‖e‖² + (η − 1)⟨e, x̂⟩² in Double, e = residual − decoded codes.
    func loss(_ c: Case, _ codes: [UInt8], eta: Double) -> Double {
        var squared = 0.0, parallel = 0.0
        for s in 0..<c.m {
            for j in 0..<c.dsub {
                let e = Double(c.residual[s * c.dsub + j]) - Double(c.transposed[(s * c.dsub + j) * 16 + Int(codes[s])])
                squared += e * e
                parallel += e * Double(c.direction[s * c.dsub + j])
            }
        }
        return squared + (eta - 1) * parallel * parallel
    }

    @Test func plainEncodingPicksTheNearestCenters() {
        var rng = TestRandom(seed: 40)
        for (m, dsub) in [(1, 1), (3, 2), (8, 4), (17, 3)] {
            let c = Self.randomCase(m: m, dsub: dsub, using: &rng)
            let codes = encode(QUIVER_ISA_SCALAR, c, eta: 1, anisotropic: false)
            for s in 0..<m {
                let distances = (0..<16).map { center in
                    (0..<dsub).reduce(Float(0)) { sum, j in
                        let diff = c.residual[s * dsub + j] - c.transposed[(s * dsub + j) * 16 + center]
                        return sum + diff * diff
                    }
                }
                let nearest = distances.indices.min { distances[$0] < distances[$1] }!
                #expect(abs(distances[Int(codes[s])] - distances[nearest]) <= 1e-6, "m=\(m) s=\(s)")
            }
        }
    }

    @Test func everyPathChoosesTheScalarCodesBitForBit() {
        var rng = TestRandom(seed: 41)
        for _ in 0..<40 {
            let m = Int.random(in: 1...200, using: &rng), dsub = Int.random(in: 1...4, using: &rng)
            let c = Self.randomCase(m: m, dsub: dsub, using: &rng)
            for (eta, anisotropic) in [(Float(1), false), (4, true), (40, true), (383, true)] {
                let reference = encode(QUIVER_ISA_SCALAR, c, eta: eta, anisotropic: anisotropic)
                for isa in simdISAs {
                    #expect(encode(isa, c, eta: eta, anisotropic: anisotropic) == reference,
                            "isa=\(isa) m=\(m) dsub=\(dsub) eta=\(eta)")
                }
            }
        }
    }

    @Test func scoreAwareDescentNeverRaisesTheLoss() {
        var rng = TestRandom(seed: 42)
        for _ in 0..<30 {
            let c = Self.randomCase(m: Int.random(in: 2...96, using: &rng), dsub: 2, using: &rng)
            for eta in [Float(2), 16, 200] {
                let nearest = encode(QUIVER_ISA_SCALAR, c, eta: 1, anisotropic: false)
                let refined = encode(QUIVER_ISA_SCALAR, c, eta: eta, anisotropic: true)
                #expect(loss(c, refined, eta: Double(eta)) <= loss(c, nearest, eta: Double(eta)) + 1e-9)
            }
        }
    }
}
