import Testing

@testable import QuiverStorage

@Suite struct TexmexReaderTests {
    @Test func fvecsRoundTrip() throws {
        let dir = try TemporaryDirectory()
        let values = sampleValues(rows: 6, dimension: 3)
        try writeFvecs(path: dir.file("base.fvecs"), rows: 6, dimension: 3, values: values)
        let file = try VectorFile.open(dir.file("base.fvecs"))
        #expect(file.format == .fvecs && file.elementType == .float32)
        #expect(file.count == 6 && file.dimension == 3)
        #expect(try file.readAll() == values)
        #expect(try file.readRows(4..<6) == Array(values[12..<18]))
    }

    @Test func bvecsRoundTrip() throws {
        let dir = try TemporaryDirectory()
        let bytes: [UInt8] = (0..<20).map { UInt8($0 * 37 % 256) }
        try writeBvecs(path: dir.file("base.bvecs"), rows: 4, dimension: 5, values: bytes)
        let file = try VectorFile.open(dir.file("base.bvecs"))
        #expect(file.format == .bvecs && file.elementType == .uint8)
        #expect(file.count == 4 && file.dimension == 5)
        #expect(try file.readAll() == bytes.map(Float.init))
    }
}
