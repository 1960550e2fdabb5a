import CQuiverKernels
import Testing

@Suite struct AssignTests {
    /// Few distinct values (ties everywhere), both zeros, and now and then ±inf and NaN.
    static func tiedValues(_ n: Int, _ rng: inout TestRandom, nan: Bool) -> [Float] {
        let distinct = Int.random(in: 1...30, using: &rng)
        return (0..<n).map { _ in
            switch Int.random(in: 0..<40, using: &rng) {
            case 0: return -0.0
            case 1: return .infinity
            case 2: return -.infinity
            case 3: return nan ? .nan : 0
            default: return (Float(Int.random(in: 0..<distinct, using: &rng)) - Float(distinct) / 2) * 0.25
            }
        }
    }

    @Test func argminIsTheFirstSmallestNonNaNOnEveryISA() {
        var rng = TestRandom(seed: 70)
        for trial in 0..<800 {
            let n = Int.random(in: 1...700, using: &rng)
            var values = Self.tiedValues(n, &rng, nan: trial % 2 == 0)
            if trial % 50 == 0 { values = [Float](repeating: .nan, count: n) }
            let numbers = values.indices.filter { !values[$0].isNaN }
            let expected = numbers.min { (values[$0], $0) < (values[$1], $1) } ?? 0
            for isa in [QUIVER_ISA_SCALAR] + simdISAs {
                #expect(Int(quiver_argmin_isa(isa, values, n)) == expected, "isa=\(isa.rawValue) trial \(trial) n=\(n)")
            }
        }
    }

    @Test func soarSpillIsTheSmallestLossNearerThenLowerOnEveryISA() {
        var rng = TestRandom(seed: 71)
        for trial in 0..<600 {
            let n = Int.random(in: 2...300, using: &rng)
            // Coarse values so that equal losses (and equal ranks among them) are common.
            let grid: (Int) -> Float = { _ in Float(Int.random(in: -6...6, using: &rng)) * 0.5 }
            var rank = (0..<n).map(grid)
            let negIP = (0..<n).map(grid)
            let gram = (0..<n).map(grid)
            if trial % 7 == 0 { rank[Int.random(in: 0..<n, using: &rng)] = .nan }
            if trial % 11 == 0 { rank[Int.random(in: 0..<n, using: &rng)] = .infinity }
            let first = Int32(Int.random(in: 0..<n, using: &rng))
            let xNorm = Float(Int.random(in: 0...8, using: &rng))
            let xDotR1 = grid(0)
            let lambda: Float = trial % 5 == 0 ? 0 : 1
            let inverse: Float = trial % 3 == 0 ? 0.5 : 0.25
            func loss(_ c: Int) -> Float {
                let p = (xDotR1 + negIP[c]) + gram[c]
                return (xNorm + rank[c]) + ((lambda * p) * p) * inverse
            }
            let others = (0..<n).filter { $0 != Int(first) && loss($0) < .infinity }
            let smallest = others.map(loss).min()
            let expected = smallest.map { s in others.filter { loss($0) == s }.min { (rank[$0], $0) < (rank[$1], $1) }! } ?? -1
            for isa in [QUIVER_ISA_SCALAR] + simdISAs {
                let got = rank.withUnsafeBufferPointer { rank in
                    negIP.withUnsafeBufferPointer { negIP in
                        gram.withUnsafeBufferPointer { gram in
                            var row = quiver_spill_row(rank: rank.baseAddress!, neg_ip: negIP.baseAddress!, gram: gram.baseAddress!,
                                                       first: first, x_norm: xNorm, x_dot_r1: xDotR1, lambda: lambda, inv_r1: inverse)
                            return quiver_soar_spill_isa(isa, &row, n)
                        }
                    }
                }
                #expect(Int(got) == expected, "isa=\(isa.rawValue) trial \(trial) n=\(n) first=\(first)")
            }
        }
    }

    @Test func soarSpillOfRandomFloatsAgreesOnEveryISA() {
        var rng = TestRandom(seed: 72)
        for _ in 0..<300 {
            let n = Int.random(in: 2...2100, using: &rng)
            let rank = (0..<n).map { _ in Float.random(in: -2...2, using: &rng) }
            let negIP = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
            let gram = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
            let first = Int32(Int.random(in: 0..<n, using: &rng))
            var answers: [Int32] = []
            for isa in [QUIVER_ISA_SCALAR] + simdISAs {
                answers.append(rank.withUnsafeBufferPointer { rank in
                    negIP.withUnsafeBufferPointer { negIP in
                        gram.withUnsafeBufferPointer { gram in
                            var row = quiver_spill_row(rank: rank.baseAddress!, neg_ip: negIP.baseAddress!, gram: gram.baseAddress!,
                                                       first: first, x_norm: 2.5, x_dot_r1: 0.3, lambda: 1, inv_r1: 0.7)
                            return quiver_soar_spill_isa(isa, &row, n)
                        }
                    }
                })
            }
            #expect(answers.allSatisfy { $0 == answers[0] } && answers[0] >= 0 && answers[0] != first)
        }
    }
}
