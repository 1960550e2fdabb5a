import Testing

@testable import QuiverStorage

/// Every kind of malformed input is rejected with its own error case, and the message names
/// the file (and the row, where there is one) so the user can find the problem.
@Suite struct BadFileTests {
    private func openError(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) -> DatasetError? {
        datasetError(mentioning: path, sourceLocation: sourceLocation) { _ = try VectorFile.open(path) }
    }

    private let goodHeader = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    private let sixFloats = floatBytes([1, 2, 3, 4, 5, 6])

    @Test func missingFile() throws {
        let dir = try TemporaryDirectory()
        let error = openError(dir.file("nope.npy"))
        guard case .fileNotFound? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(error!.description.contains("not found"))
        let viaDataset = datasetError(mentioning: dir.file("nope.fvecs")) {
            _ = try VectorDataset(pattern: dir.file("nope.fvecs"))
        }
        guard case .fileNotFound? = viaDataset else { Issue.record("\(String(describing: viaDataset))"); return }
    }

    @Test func badMagic() throws {
        let dir = try TemporaryDirectory()
        let error = openError(try dir.write("x.npy", Array("PK\u{3}\u{4} zip file".utf8)))
        guard case .badMagic(_, let found)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(found == Array("PK\u{3}\u{4} z".utf8))
        let empty = openError(try dir.write("empty.npy", []))
        guard case .badMagic? = empty else { Issue.record("\(String(describing: empty))"); return }
    }

    @Test func unsupportedVersion() throws {
        let dir = try TemporaryDirectory()
        var bytes = npyBytes(header: goodHeader, data: sixFloats)
        bytes[6] = 4
        let error = openError(try dir.write("x.npy", bytes))
        guard case .unsupportedNpyVersion(_, 4, 0)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(error!.description.contains("4.0"))
    }

    @Test(arguments: [
        "not a dict",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)",
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}",
    ])
    func unparseableHeader(header: String) throws {
        let dir = try TemporaryDirectory()
        let error = openError(try dir.write("x.npy", npyBytes(header: header, data: sixFloats)))
        guard case .unparseableHeader? = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test func headerLongerThanFile() throws {
        let dir = try TemporaryDirectory()
        let bytes = Array(npyBytes(header: goodHeader).prefix(30))
        let error = openError(try dir.write("x.npy", bytes))
        guard case .unparseableHeader? = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test(arguments: ["<f8", ">f4", "<c8", "|b1"])
    func unsupportedDtype(descr: String) throws {
        let dir = try TemporaryDirectory()
        let header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (2, 3), }"
        let error = openError(try dir.write("x.npy", npyBytes(header: header, data: sixFloats)))
        guard case .unsupportedElementType(_, let found, let supported)? = error else {
            Issue.record("\(String(describing: error))"); return
        }
        #expect(found.contains(descr))
        #expect(supported.contains { $0.contains("<f2") })
        #expect(error!.description.contains("<f4"))
    }

    @Test func structuredDtype() throws {
        let dir = try TemporaryDirectory()
        let header = "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2, 3), }"
        let error = openError(try dir.write("x.npy", npyBytes(header: header, data: sixFloats)))
        guard case .unparseableHeader? = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test func fortranOrder() throws {
        let dir = try TemporaryDirectory()
        let header = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"
        let error = openError(try dir.write("x.npy", npyBytes(header: header, data: sixFloats)))
        guard case .fortranOrder? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(error!.description.contains("ascontiguousarray"))
    }

    @Test(arguments: [[6], [1, 2, 3], []])
    func notTwoDimensional(shape: [Int]) throws {
        let dir = try TemporaryDirectory()
        let tuple = "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(tuple), }"
        let count = shape.reduce(1, *)
        let error = openError(try dir.write("x.npy", npyBytes(header: header, data: floatBytes(.init(repeating: 1, count: count)))))
        guard case .notTwoDimensional(_, shape)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(error!.description.contains(tuple))
    }

    @Test func npyTruncatedNamesFirstIncompleteRow() throws {
        let dir = try TemporaryDirectory()
        try writeNpy(path: dir.file("x.npy"), rows: 5, dimension: 4, values: sampleValues(rows: 5, dimension: 4))
        let full = try readBytes(dir.file("x.npy"))
        // Cut in the middle of row 3.
        let path = try dir.write("cut.npy", Array(full.dropLast(16 + 6)))
        let error = openError(path)
        guard case .truncated(_, 3, let expected, let actual)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(expected == full.count && actual == full.count - 22)
        #expect(error!.description.contains("row 3"))
    }

    @Test func npyTrailingBytes() throws {
        let dir = try TemporaryDirectory()
        let error = openError(try dir.write("x.npy", npyBytes(header: goodHeader, data: sixFloats + [0, 0])))
        guard case .trailingBytes? = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test func npyNonPositiveDimension() throws {
        let dir = try TemporaryDirectory()
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 0), }"
        let error = openError(try dir.write("x.npy", npyBytes(header: header)))
        guard case .nonPositiveDimension(_, nil, 0)? = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test(arguments: [Int32(0), -3])
    func texmexNonPositiveDimension(dimension: Int32) throws {
        let dir = try TemporaryDirectory()
        let path = try dir.write("x.fvecs", fvecsBytes([(dimension, [1, 2, 3])]))
        let error = openError(path)
        guard case .nonPositiveDimension(_, 0, Int(dimension))? = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test func texmexDimensionChangeDetectedAtOpen() throws {
        // Row 2 is shorter, so the size no longer divides into rows.
        let dir = try TemporaryDirectory()
        let path = try dir.write("x.fvecs", fvecsBytes([(4, [1, 2, 3, 4]), (4, [1, 2, 3, 4]), (2, [1, 2]), (4, [1, 2, 3, 4])]))
        let error = openError(path)
        guard case .dimensionChanged(_, 2, 4, 2)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(error!.description.contains("row 2 has dimension 2, expected 4"))
    }

    @Test func texmexDimensionChangeDetectedWhileReading() throws {
        // Rows 1 and 2 have dimensions 5 and 3: the total still divides by the row size, so
        // only the per-row check while reading can catch it.
        let dir = try TemporaryDirectory()
        let path = try dir.write("x.fvecs", fvecsBytes([(4, [1, 2, 3, 4]), (5, [1, 2, 3, 4, 5]), (3, [1, 2, 3]), (4, [1, 2, 3, 4])]))
        let file = try VectorFile.open(path)
        #expect(file.count == 4)
        #expect(try file.readRows(0..<1) == [1, 2, 3, 4])
        let error = datasetError(mentioning: path) { _ = try VectorDataset(paths: [path]).readAll() }
        guard case .dimensionChanged(_, 1, 4, 5)? = error else { Issue.record("\(String(describing: error))"); return }
        let integers = datasetError(mentioning: dir.file("y.ivecs")) {
            _ = try dir.write("y.ivecs", fvecsBytes([(2, [1, 2]), (3, [1])]))
            _ = try readIntegerMatrix(path: dir.file("y.ivecs"))
        }
        guard case .dimensionChanged(_, 1, 2, 3)? = integers else { Issue.record("\(String(describing: integers))"); return }
    }

    @Test func texmexTruncatedRow() throws {
        let dir = try TemporaryDirectory()
        let full = fvecsBytes([(3, [1, 2, 3]), (3, [4, 5, 6]), (3, [7, 8, 9])])
        for cut in [1, 5, 12, 14] {
            let path = try dir.write("x\(cut).fvecs", Array(full.dropLast(cut)))
            let error = openError(path)
            guard case .truncated(_, 2, _, full.count - cut)? = error else {
                Issue.record("cut \(cut): \(String(describing: error))"); continue
            }
            #expect(error!.description.contains("row 2"))
        }
        let tiny = openError(try dir.write("tiny.bvecs", [3, 0]))
        guard case .truncated(_, 0, 4, 2)? = tiny else { Issue.record("\(String(describing: tiny))"); return }
    }

    @Test func unknownExtension() throws {
        let dir = try TemporaryDirectory()
        for name in ["vectors.txt", "vectors", "npy"] {
            let error = openError(try dir.write(name, [1, 2, 3, 4]))
            guard case .unknownExtension(_, let supported)? = error else {
                Issue.record("\(name): \(String(describing: error))"); continue
            }
            #expect(supported == [".npy", ".fvecs", ".bvecs", ".ivecs"])
        }
    }

    @Test func directoryIsNotAFile() throws {
        let dir = try TemporaryDirectory()
        let error = openError(dir.path)
        guard case .cannotOpen? = error else { Issue.record("\(String(describing: error))"); return }
    }
}

private func readBytes(_ path: String) throws -> [UInt8] {
    let file = try MappedFile(path: path)
    return Array(file.bytes)
}
