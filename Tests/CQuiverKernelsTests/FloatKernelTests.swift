import CQuiverKernels
import Testing

private func randomFloats(_ n: Int, using rng: inout TestRandom) -> [Float] {
    (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
}

/// Naive dot product in Double, and the bound its float evaluation may be off by.
private func referenceDot(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> (value: Double, tolerance: Double) {
    var sum = 0.0, magnitude = 0.0
    for (x, y) in zip(a, b) {
        sum += Double(x) * Double(y)
        magnitude += abs(Double(x) * Double(y))
    }
    return (sum, magnitude * Double(a.count + 1) * 0x1p-23 + 1e-30)
}

@Suite struct FloatKernels {
    @Test func innerProductsMatchNaiveOnOddShapes() {
        var rng = TestRandom(seed: 20)
        let shapes = [(1, 1, 1), (1, 4, 8), (3, 4, 16), (5, 7, 3), (13, 17, 33), (7, 9, 131), (2, 5, 0), (4, 11, 200)]
        for (na, nb, d) in shapes {
            let a = randomFloats(na * d, using: &rng), b = randomFloats(nb * d, using: &rng)
            let ldo = nb + 3  // padding columns must stay untouched
            for isa in [QUIVER_ISA_SCALAR] + simdISAs {
                var out = [Float](repeating: .nan, count: na * ldo)
                quiver_inner_products_isa(isa, a, na, b, nb, d, &out, ldo)
                for i in 0..<na {
                    for j in 0..<nb {
                        let (value, tolerance) = referenceDot(a[i * d..<(i + 1) * d], b[j * d..<(j + 1) * d])
                        #expect(abs(Double(out[i * ldo + j]) - value) <= tolerance,
                                "isa=\(isa) na=\(na) nb=\(nb) d=\(d) at (\(i), \(j))")
                    }
                    let padding = out[(i * ldo + nb)..<((i + 1) * ldo)]
                    #expect(padding.allSatisfy { $0.isNaN })
                }
            }
        }
    }

    @Test func innerProductsDoNotDependOnTheBlocking() {
        // One query against one centroid equals the same pair inside a large batch, bit for bit:
        // a coordinator's batched coarse scores then equal what one index computes alone.
        var rng = TestRandom(seed: 22)
        for d in [3, 16, 33, 128, 384] {
            let na = 11, nb = 37
            let a = randomFloats(na * d, using: &rng), b = randomFloats(nb * d, using: &rng)
            for isa in [QUIVER_ISA_SCALAR] + simdISAs {
                var all = [Float](repeating: 0, count: na * nb)
                quiver_inner_products_isa(isa, a, na, b, nb, d, &all, nb)
                for (i, j) in [(0, 0), (10, 36), (5, 17), (3, 2)] {
                    var one: Float = 0
                    a.withUnsafeBufferPointer { a in
                        b.withUnsafeBufferPointer { b in
                            quiver_inner_products_isa(isa, a.baseAddress! + i * d, 1, b.baseAddress! + j * d, 1, d, &one, 1)
                        }
                    }
                    #expect(one.bitPattern == all[i * nb + j].bitPattern, "isa=\(isa) d=\(d) (\(i), \(j))")
                }
            }
        }
    }

    @Test func rerankMatchesNaiveDistances() {
        var rng = TestRandom(seed: 23)
        for d in [1, 7, 16, 31, 32, 33, 100, 384] {
            let n = 50
            let base = randomFloats(n * d, using: &rng), query = randomFloats(d, using: &rng)
            var halves = [UInt16](repeating: 0, count: n * d)
            quiver_f32_to_f16_isa(QUIVER_ISA_SCALAR, base, &halves, n * d)
            var widened = [Float](repeating: 0, count: n * d)
            quiver_f16_to_f32_isa(QUIVER_ISA_SCALAR, halves, &widened, n * d)
            let rows: [Int64] = [3, -1, 49, 0, 17, 17, 25, -1, 8]
            for isa in [QUIVER_ISA_SCALAR] + simdISAs {
                for (useHalves, stored) in [(false, base), (true, widened)] {
                    for innerProduct in [true, false] {
                        var out = [Float](repeating: .nan, count: rows.count)
                        if useHalves {
                            quiver_rerank_isa(isa, query, halves, 1, d, rows, rows.count, innerProduct ? 1 : 0, &out)
                        } else {
                            quiver_rerank_isa(isa, query, base, 0, d, rows, rows.count, innerProduct ? 1 : 0, &out)
                        }
                        for (i, row) in rows.enumerated() {
                            guard row >= 0 else {
                                #expect(out[i] == .infinity)
                                continue
                            }
                            let x = stored[Int(row) * d ..< (Int(row) + 1) * d]
                            let expected = innerProduct
                                ? referenceDot(query[...], x)
                                : { let diff = zip(query, x).map { $0 - $1 }; return referenceDot(diff[...], diff[...]) }()
                            let value = innerProduct ? -Double(out[i]) : Double(out[i])
                            #expect(abs(value - expected.value) <= expected.tolerance * 2,
                                    "isa=\(isa) halves=\(useHalves) ip=\(innerProduct) d=\(d) row \(row)")
                        }
                    }
                }
            }
        }
    }

    @Test func vectorKernelsMatchNaive() {
        var rng = TestRandom(seed: 21)
        for d in Array(0...40) + [100, 131, 256] {
            let a = randomFloats(d, using: &rng), b = randomFloats(d, using: &rng)
            let dot = referenceDot(a[...], b[...])
            #expect(abs(Double(quiver_dot(a, b, d)) - dot.value) <= dot.tolerance, "d=\(d)")
            let diff = zip(a, b).map { $0 - $1 }
            let l2 = referenceDot(diff[...], diff[...])
            #expect(abs(Double(quiver_l2_squared(a, b, d)) - l2.value) <= l2.tolerance * 2, "d=\(d)")

            var halves = [UInt16](repeating: 0, count: d)
            quiver_f32_to_f16_isa(QUIVER_ISA_SCALAR, b, &halves, d)
            var widened = [Float](repeating: 0, count: d)
            quiver_f16_to_f32_isa(QUIVER_ISA_SCALAR, halves, &widened, d)
            let dotHalf = referenceDot(a[...], widened[...])
            #expect(abs(Double(quiver_dot_f16(a, halves, d)) - dotHalf.value) <= dotHalf.tolerance, "d=\(d)")
            let diffHalf = zip(a, widened).map { $0 - $1 }
            let l2Half = referenceDot(diffHalf[...], diffHalf[...])
            #expect(abs(Double(quiver_l2_squared_f16(a, halves, d)) - l2Half.value) <= l2Half.tolerance * 2,
                    "d=\(d)")
        }
        let rows = 9, d = 37
        let a = randomFloats(rows * d, using: &rng)
        var norms = [Float](repeating: 0, count: rows)
        quiver_squared_norms(a, rows, d, &norms)
        for i in 0..<rows {
            let row = a[i * d..<(i + 1) * d]
            let norm = referenceDot(row, row)
            #expect(abs(Double(norms[i]) - norm.value) <= norm.tolerance)
        }
    }
}

@Suite struct HalfConversions {
    static let allHalves = (0...UInt16.max).map { $0 }

    @Test(arguments: [QUIVER_ISA_SCALAR, simdISA])
    func everyFiniteHalfRoundTripsExactly(isa: quiver_isa) {
        let halves = Self.allHalves.filter { $0 & 0x7c00 != 0x7c00 }
        var floats = [Float](repeating: 0, count: halves.count)
        quiver_f16_to_f32_isa(isa, halves, &floats, halves.count)
        var back = [UInt16](repeating: 0, count: halves.count)
        quiver_f32_to_f16_isa(isa, floats, &back, floats.count)
        #expect(back == halves)
    }

    @Test(.enabled(if: hasSIMD, noSIMDReason))
    func simdAndScalarAgreeOnEveryHalfIncludingNaN() {
        let halves = Self.allHalves
        var scalar = [Float](repeating: 0, count: halves.count), simd = scalar
        quiver_f16_to_f32_isa(QUIVER_ISA_SCALAR, halves, &scalar, halves.count)
        quiver_f16_to_f32_isa(simdISA, halves, &simd, halves.count)
        #expect(scalar.map(\.bitPattern) == simd.map(\.bitPattern))
    }

    @Test func knownValues() {
        let cases: [(UInt16, Float)] = [
            (0x3c00, 1), (0xc000, -2), (0x7bff, 65504), (0x0400, 0x1p-14), (0x0001, 0x1p-24),
            (0x03ff, 0x1.ff8p-15), (0x8000, -0.0), (0x7c00, .infinity), (0xfc00, -.infinity),
        ]
        for isa in [QUIVER_ISA_SCALAR, simdISA] {
            var floats = [Float](repeating: 0, count: cases.count)
            quiver_f16_to_f32_isa(isa, cases.map(\.0), &floats, cases.count)
            #expect(floats.map(\.bitPattern) == cases.map(\.1.bitPattern), "isa=\(isa)")
        }
    }

    @Test func narrowingRoundsToNearestEven() {
        let cases: [(Float, UInt16)] = [
            (1 + 0x1p-11, 0x3c00),          // tie, even neighbour below
            (1 + 3 * 0x1p-11, 0x3c02),      // tie, even neighbour above
            (1 + 0x1.002p-11, 0x3c01),      // just past the tie
            (65519, 0x7bff), (65520, 0x7c00), (1e9, 0x7c00), (-1e9, 0xfc00),
            (0x1p-25, 0x0000),              // tie between zero and the smallest subnormal
            (0x1.000002p-25, 0x0001), (0x1.8p-24, 0x0002), (0x1p-26, 0x0000),
            (0x1.ffcp-15, 0x0400),          // tie above the largest subnormal: even is the smallest normal
            (-0x1p-30, 0x8000), (.infinity, 0x7c00), (.leastNonzeroMagnitude, 0x0000),
        ]
        for isa in [QUIVER_ISA_SCALAR, simdISA] {
            var halves = [UInt16](repeating: 0, count: cases.count)
            quiver_f32_to_f16_isa(isa, cases.map(\.0), &halves, cases.count)
            #expect(halves == cases.map(\.1), "isa=\(isa)")
        }
        var nan: UInt16 = 0
        quiver_f32_to_f16([Float.nan], &nan, 1)
        #expect(nan & 0x7c00 == 0x7c00 && nan & 0x3ff != 0)
    }

    @Test(.enabled(if: hasSIMD, noSIMDReason))
    func simdAndScalarNarrowIdenticallyOnRandomBits() {
        var rng = TestRandom(seed: 22)
        // Half the samples land near the half range, where the rounding cases live.
        let floats = (0..<100_003).map { i -> Float in
            let bits = UInt32.random(in: 0...UInt32.max, using: &rng)
            if i % 2 == 0 { return Float(bitPattern: bits) }
            let exponent = UInt32.random(in: 98...145, using: &rng)
            return Float(bitPattern: bits & 0x807f_ffff | exponent << 23)
        }
        var scalar = [UInt16](repeating: 0, count: floats.count), simd = scalar
        quiver_f32_to_f16_isa(QUIVER_ISA_SCALAR, floats, &scalar, floats.count)
        quiver_f32_to_f16_isa(simdISA, floats, &simd, floats.count)
        #expect(scalar == simd)
    }
}
