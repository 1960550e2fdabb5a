import Testing

@testable import QuiverStorage

@Suite struct VectorDatasetTests {
    /// Three files of 5, 3 and 7 rows, dimension 4, in mixed formats and element types.
    private func makeShards(in dir: TemporaryDirectory) throws -> (paths: [String], values: [Float]) {
        let a = sampleValues(rows: 5, dimension: 4, offset: 0)
        let b = sampleValues(rows: 3, dimension: 4, offset: 100)
        let c = sampleValues(rows: 7, dimension: 4, offset: 200)
        try writeNpy(path: dir.file("base.1.npy"), rows: 5, dimension: 4, values: a, elementType: .float16)
        try writeFvecs(path: dir.file("base.2.fvecs"), rows: 3, dimension: 4, values: b)
        try writeNpy(path: dir.file("base.10.npy"), rows: 7, dimension: 4, values: c)
        return ([dir.file("base.1.npy"), dir.file("base.2.fvecs"), dir.file("base.10.npy")], a + b + c)
    }

    @Test func rowsAreNumberedAcrossFiles() throws {
        let dir = try TemporaryDirectory()
        let (paths, values) = try makeShards(in: dir)
        let dataset = try VectorDataset(paths: paths)
        #expect(dataset.files.map(\.path) == paths)
        #expect(dataset.count == 15)
        #expect(dataset.dimension == 4)
        #expect(try dataset.readAll() == values)
        // 3..<10 starts in the first file, covers the second and ends in the third.
        #expect(try dataset.readRows(3..<10) == Array(values[12..<40]))
        #expect(try dataset.readRows(8..<9) == Array(values[32..<36]))
        #expect(try dataset.readRows(15..<15).isEmpty)
    }

    @Test(arguments: [1, 4, 5, 15, 100])
    func batchesSpanFileBoundaries(batchRows: Int) throws {
        let dir = try TemporaryDirectory()
        let (paths, values) = try makeShards(in: dir)
        let dataset = try VectorDataset(paths: paths)
        var seen: [Float] = []
        var firsts: [Int] = []
        try dataset.forEachBatch(rows: batchRows) { firstRow, batch, rowCount in
            #expect(firstRow == seen.count / 4)
            #expect(batch.count == rowCount * 4)
            #expect(rowCount == min(batchRows, 15 - firstRow))
            firsts.append(firstRow)
            seen += batch
        }
        #expect(seen == values)
        #expect(firsts == Array(stride(from: 0, to: 15, by: batchRows)))
    }

    @Test func batchBodyErrorsPropagate() throws {
        struct Stop: Error {}
        let dir = try TemporaryDirectory()
        let (paths, _) = try makeShards(in: dir)
        var calls = 0
        #expect(throws: Stop.self) {
            try VectorDataset(paths: paths).forEachBatch(rows: 2) { _, _, _ in
                calls += 1
                if calls == 2 { throw Stop() }
            }
        }
        #expect(calls == 2)
    }

    @Test func patternIsExpandedInNumericOrder() throws {
        let dir = try TemporaryDirectory()
        let (paths, values) = try makeShards(in: dir)
        try writeNpy(path: dir.file("queries.npy"), rows: 1, dimension: 4, values: [1, 2, 3, 4] as [Float])
        let dataset = try VectorDataset(pattern: dir.file("base.*"))
        #expect(dataset.files.map(\.path) == paths)
        #expect(try dataset.readAll() == values)
        #expect(try VectorDataset(pattern: dir.file("queries.npy")).count == 1)
    }

    @Test func naturalOrdering() {
        let names = ["b.10.npy", "b.2.npy", "b.1.npy", "a.npy", "b.02.npy", "b.1a.npy"]
        #expect(names.sorted(by: naturalOrder) == ["a.npy", "b.1.npy", "b.1a.npy", "b.02.npy", "b.2.npy", "b.10.npy"])
    }

    @Test func emptyFileInTheMiddle() throws {
        let dir = try TemporaryDirectory()
        try writeNpy(path: dir.file("a.npy"), rows: 2, dimension: 2, values: [1, 2, 3, 4] as [Float])
        try writeNpy(path: dir.file("b.npy"), rows: 0, dimension: 2, values: [] as [Float])
        try writeNpy(path: dir.file("c.npy"), rows: 1, dimension: 2, values: [5, 6] as [Float])
        let dataset = try VectorDataset(paths: ["a.npy", "b.npy", "c.npy"].map(dir.file))
        #expect(dataset.count == 3)
        #expect(try dataset.readRows(1..<3) == [3, 4, 5, 6])
    }

    @Test func nonFiniteValueNamesFileRowAndColumn() throws {
        let dir = try TemporaryDirectory()
        try writeNpy(path: dir.file("a.npy"), rows: 2, dimension: 3, values: [1, 2, 3, 4, 5, 6] as [Float])
        var bad = sampleValues(rows: 4, dimension: 3)
        bad[2 * 3 + 1] = .nan
        try writeFvecs(path: dir.file("b.fvecs"), rows: 4, dimension: 3, values: bad)
        try writeNpy(path: dir.file("c.npy"), rows: 4, dimension: 3, values: bad, elementType: .float16)
        var inf = sampleValues(rows: 2, dimension: 3)
        inf[5] = 1e6  // Beyond float16's range: stored as +Inf.
        try writeNpy(path: dir.file("d.npy"), rows: 2, dimension: 3, values: inf, elementType: .float16)

        let first = datasetError(mentioning: dir.file("b.fvecs")) {
            let dataset = try VectorDataset(paths: [dir.file("b.fvecs")])
            try dataset.forEachBatch(rows: 10) { _, _, _ in }
        }
        guard case .nonFiniteValue(_, 2, 1, let value)? = first, value.isNaN else {
            Issue.record("\(String(describing: first))"); return
        }
        #expect(first!.description.contains("row 2, column 1"))

        let second = datasetError(mentioning: dir.file("c.npy")) {
            _ = try VectorDataset(paths: [dir.file("c.npy")]).readRows(1..<4)
        }
        guard case .nonFiniteValue(_, 2, 1, _)? = second else { Issue.record("\(String(describing: second))"); return }

        let third = datasetError(mentioning: dir.file("d.npy")) { _ = try VectorFile.open(dir.file("d.npy")).readAll() }
        guard case .nonFiniteValue(_, 1, 2, .infinity)? = third else { Issue.record("\(String(describing: third))"); return }

        // Rows before the bad one stream fine; the error is thrown for the batch holding it.
        var delivered = 0
        _ = datasetError(mentioning: dir.file("b.fvecs")) {
            try VectorDataset(paths: [dir.file("a.npy"), dir.file("b.fvecs")]).forEachBatch(rows: 2) { _, _, n in
                delivered += n
            }
        }
        #expect(delivered == 4)
    }

    @Test func filesWithDifferentDimensions() throws {
        let dir = try TemporaryDirectory()
        try writeNpy(path: dir.file("a.npy"), rows: 1, dimension: 4, values: [1, 2, 3, 4] as [Float])
        try writeFvecs(path: dir.file("b.fvecs"), rows: 1, dimension: 3, values: [1, 2, 3])
        let error = datasetError(mentioning: dir.file("b.fvecs")) {
            _ = try VectorDataset(paths: [dir.file("a.npy"), dir.file("b.fvecs")])
        }
        guard case .dimensionMismatch(_, 3, 4, let firstPath)? = error else {
            Issue.record("\(String(describing: error))"); return
        }
        #expect(firstPath == dir.file("a.npy"))
        #expect(error!.description.contains(dir.file("a.npy")))
    }

    @Test func patternMatchingNothing() throws {
        let dir = try TemporaryDirectory()
        let pattern = dir.file("base.*.npy")
        let error = datasetError(mentioning: nil) { _ = try VectorDataset(pattern: pattern) }
        guard case .noFilesMatch(pattern)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(error!.description.contains(pattern))
        let empty = datasetError(mentioning: nil) { _ = try VectorDataset(paths: []) }
        guard case .noFilesMatch? = empty else { Issue.record("\(String(describing: empty))"); return }
    }

    @Test func rowRangeOutOfBounds() throws {
        let dir = try TemporaryDirectory()
        try writeNpy(path: dir.file("a.npy"), rows: 2, dimension: 2, values: [1, 2, 3, 4] as [Float])
        let dataset = try VectorDataset(paths: [dir.file("a.npy")])
        let error = datasetError(mentioning: nil) { _ = try dataset.readRows(1..<3) }
        guard case .rowRangeOutOfBounds(1..<3, 2)? = error else { Issue.record("\(String(describing: error))"); return }
    }
}
