import Testing

@testable import QuiverStorage

@Suite struct NpyReaderTests {
    @Test(arguments: [VectorElementType.float32, .float16])
    func floatRoundTrip(type: VectorElementType) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("base.npy")
        let values = sampleValues(rows: 7, dimension: 5)
        try writeNpy(path: path, rows: 7, dimension: 5, values: values, elementType: type)

        let file = try VectorFile.open(path)
        #expect(file.format == .npy)
        #expect(file.elementType == type)
        #expect(file.count == 7)
        #expect(file.dimension == 5)
        #expect(try file.readAll() == values)
        #expect(try file.readRows(2..<4) == Array(values[10..<20]))
        #expect(try file.readRows(3..<3).isEmpty)
    }

    @Test func uint8AndInt8RoundTrip() throws {
        let dir = try TemporaryDirectory()
        let bytes: [UInt8] = (0..<24).map { UInt8($0 * 11 % 256) }
        try writeNpy(path: dir.file("u8.npy"), rows: 4, dimension: 6, values: bytes)
        let u8 = try VectorFile.open(dir.file("u8.npy"))
        #expect(u8.elementType == .uint8)
        #expect(try u8.readAll() == bytes.map(Float.init))

        let signed: [Int8] = (0..<24).map { Int8(truncatingIfNeeded: $0 * 13 - 128) }
        try writeNpy(path: dir.file("i8.npy"), rows: 4, dimension: 6, values: signed)
        let i8 = try VectorFile.open(dir.file("i8.npy"))
        #expect(i8.elementType == .int8)
        #expect(try i8.readAll() == signed.map(Float.init))
    }

    @Test(arguments: [UInt8(1), 2, 3])
    func headerVersions(major: UInt8) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("v\(major).npy")
        let values = sampleValues(rows: 3, dimension: 4)
        try writeNpy(path: path, rows: 3, dimension: 4, values: values, elementType: .float32,
                     version: major)
        let file = try VectorFile.open(path)
        #expect(try file.readAll() == values)
    }

    @Test(arguments: [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}",
        "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2L, 3L)}",
        // A single row is both C and Fortran contiguous; other writers may flag it either way.
        "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6), }",
    ])
    func headerVariants(header: String) throws {
        let dir = try TemporaryDirectory()
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let path = try dir.write("x.npy", npyBytes(header: header, data: floatBytes(values)))
        let file = try VectorFile.open(path)
        #expect(file.count * file.dimension == 6)
        #expect(try file.readAll() == values)
    }

    @Test func unalignedDataSection() throws {
        // Not every writer pads to 64 bytes; the reader must not assume alignment.
        let dir = try TemporaryDirectory()
        let header = Array("{'descr': '<f2', 'fortran_order': False, 'shape': (1, 3), }\n".utf8)
        let data = [Float16(1.5), -2, 0.25].flatMap { littleEndianBytes($0.bitPattern) }
        let bytes = [0x93] + Array("NUMPY".utf8) + [1, 0] + littleEndianBytes(UInt16(header.count)) + header + data
        let path = try dir.write("odd.npy", bytes)
        #expect(try VectorFile.open(path).readAll() == [1.5, -2, 0.25])
    }

    @Test func integerMatrices() throws {
        let dir = try TemporaryDirectory()
        let ids32: [Int32] = [5, 3, Int32.max, -1, 0, 7]
        try writeNpy(path: dir.file("gt.npy"), rows: 2, columns: 3, values: ids32)
        let gt = try readIntegerMatrix(path: dir.file("gt.npy"))
        #expect(gt.rows == 2 && gt.columns == 3)
        #expect(gt.values == ids32.map(Int64.init))
        #expect(Array(gt[1]) == [-1, 0, 7])

        let ids64: [Int64] = [Int64.max, 1 << 40, -5, 2]
        try writeNpy(path: dir.file("ids.npy"), rows: 4, columns: 1, values: ids64)
        #expect(try readIntegerMatrix(path: dir.file("ids.npy")).values == ids64)

        try writeIvecs(path: dir.file("gt.ivecs"), rows: 2, columns: 3, values: ids32)
        #expect(try readIntegerMatrix(path: dir.file("gt.ivecs")) == gt)
    }

    @Test func integerAndVectorReadersRejectEachOther() throws {
        let dir = try TemporaryDirectory()
        try writeNpy(path: dir.file("gt.npy"), rows: 1, columns: 2, values: [Int32(1), 2])
        try writeNpy(path: dir.file("v.npy"), rows: 1, dimension: 2, values: [Float(1), 2])

        let asVectors = datasetError(mentioning: dir.file("gt.npy")) { _ = try VectorFile.open(dir.file("gt.npy")) }
        guard case .unsupportedElementType? = asVectors else { Issue.record("\(String(describing: asVectors))"); return }
        #expect(asVectors!.description.contains("readIntegerMatrix"))

        let asIntegers = datasetError(mentioning: dir.file("v.npy")) { _ = try readIntegerMatrix(path: dir.file("v.npy")) }
        guard case .unsupportedElementType? = asIntegers else { Issue.record("\(String(describing: asIntegers))"); return }
    }

    @Test func writersLeaveNoTemporaryFiles() throws {
        let dir = try TemporaryDirectory()
        try writeNpy(path: dir.file("a.npy"), rows: 2, dimension: 2, values: [1, 2, 3, 4] as [Float])
        // Overwriting replaces the file in one step.
        try writeNpy(path: dir.file("a.npy"), rows: 1, dimension: 2, values: [5, 6] as [Float])
        let error = datasetError(mentioning: dir.file("b.npy")) {
            try writeNpy(path: dir.file("b.npy"), rows: 2, dimension: 2, values: [1, 2, 3] as [Float])
        }
        guard case .valueCountMismatch(_, 4, 3)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(try dir.contents() == ["a.npy"])
        #expect(try VectorFile.open(dir.file("a.npy")).readAll() == [5, 6])
    }

    @Test func largeHeaderSwitchesToVersion2() {
        let header = NpyFormat.header(elementType: .float32, rows: 3, columns: 4)
        #expect(header[6] == 1)
        #expect(header.count % 64 == 0)
        #expect(NpyFormat.header(elementType: .float32, rows: 3, columns: 4, version: 2)[6] == 2)
    }
}
