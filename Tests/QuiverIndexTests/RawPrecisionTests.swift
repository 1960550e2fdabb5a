import QuiverIndex
import Testing

@Suite struct RawPrecisionTests {
    func scaled(_ matrix: Matrix, by factor: Float, plus offset: Float = 0) -> Matrix {
        Matrix(rows: matrix.rows, dimension: matrix.dimension, values: matrix.values.map { $0 * factor + offset })
    }

    @Test func embeddingsAndIntegerDataKeepHalves() {
        let unit = SyntheticData(count: 3000, queries: 1, dimension: 64, clusters: 20, normalize: true).base
        #expect(RawVectorPrecision.automatic(for: unit) == .float16)
        #expect(RawVectorPrecision.automatic(for: scaled(unit, by: 300)) == .float16)
        let integers = Matrix(rows: unit.rows, dimension: unit.dimension, values: unit.values.map { ($0 * 1000).rounded() + 1000 })
        #expect(RawVectorPrecision.automatic(for: integers) == .float16, "integers below 2048 are exact in float16")
    }

    @Test func dataFloat16CannotHoldKeepsFloat32() {
        let unit = SyntheticData(count: 3000, queries: 1, dimension: 64, clusters: 20, normalize: true).base
        // Beyond float16's range (a single value is enough).
        var huge = unit
        huge.values[1234] = 70_000
        #expect(RawVectorPrecision.automatic(for: huge) == .float32)
        // So small that float16 keeps only a few bits (subnormal).
        #expect(RawVectorPrecision.automatic(for: scaled(unit, by: 1e-5)) == .float32)
        // Large values that vary little: the rounding step is as large as the spread.
        #expect(RawVectorPrecision.automatic(for: scaled(unit, by: 0.1, plus: 1000)) == .float32)
        #expect(RawVectorPrecision.automatic(for: Matrix(rows: 0, dimension: 4, values: [])) == .float16)
    }
}
