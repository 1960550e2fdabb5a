import Foundation
import QuiverIndex
import Testing

@testable import QuiverStorage

/// The durable segment store: round trips, crash recovery, corruption detection, rotation.
@Suite struct CollectionStoreTests {
    private func segmentPath(_ dir: TemporaryDirectory, _ name: String, _ number: UInt64) -> String {
        CollectionStore.collectionsFolder(dataDirectory: dir.path) + "/" + name + "/" + SegmentFile.name(number: number)
    }

    private func bytes(of path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    private func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

    /// A new collection holding three batches of `rowsPerBatch` rows, and an in-memory index of the same.
    private func storeWithBatches(_ dir: TemporaryDirectory, _ name: String, _ model: IVFModel,
                                  rowsPerBatch: Int) throws -> (CollectionStore, IVFIndex) {
        let store = try CollectionStore.create(dataDirectory: dir.path, name: name, model: model)
        var expected = IVFIndex(model: model)
        for part in 0 ..< 3 {
            let batch = try Fixtures.batch(model, rows: rowsPerBatch, firstID: Int64(part * rowsPerBatch), seed: UInt64(part))
            try store.append(batch)
            try expected.append(batch)
        }
        return (store, expected)
    }

    @Test func recordRoundTrip() throws {
        let model = try Fixtures.model()
        let batch = try Fixtures.batch(model, rows: 37, firstID: 1000, seed: 1)
        #expect(!batch.spill.isEmpty && !batch.vectors.isEmpty)
        let record = SegmentRecord.encode(batch, dimension: model.dimension)
        let header = try #require(record.withUnsafeBytes { SegmentRecord.decodeHeader($0) })
        #expect(header.rows == 37 && header.recordLength == record.count)
        let decoded = record.withUnsafeBytes { SegmentRecord.decodePayload(UnsafeRawBufferPointer(rebasing: $0[SegmentRecord.headerSize...]), header: header) }
        #expect(decoded == .batch(batch))
    }

    @Test func float16CollectionsWriteHalfVectorsAndReplayTheSameIndex() throws {
        let dir = try TemporaryDirectory()
        let model = try Fixtures.model(raw: .float16)
        let (_, expected) = try storeWithBatches(dir, "half", model, rowsPerBatch: 41)
        // The records hold 2 bytes per vector component.
        let segment = try bytes(of: segmentPath(dir, "half", 1))
        let header = try #require(segment.withUnsafeBytes { SegmentRecord.decodeHeader($0) })
        #expect(header.halfVectors && header.hasVectors)
        let width = EncodedBatch.codeWidth(model.configuration)
        #expect(header.payloadLength == 41 * (8 + 4 + 4 + 2 * width + 2 * Fixtures.dimension))
        #expect(segment.count == 3 * header.recordLength)

        let reopened = try CollectionStore.open(dataDirectory: dir.path, name: "half")
        #expect(reopened.truncatedBytes == 0 && reopened.damage.isEmpty)
        #expect(reopened.index.storedState == expected.storedState)

        // A rewrite (compaction) keeps them in float16 and the same index.
        try reopened.store.rewrite(from: reopened.index)
        #expect(try CollectionStore.open(dataDirectory: dir.path, name: "half").index.storedState == expected.storedState)
    }

    @Test func float32RecordsReplayIntoAFloat16CollectionAsBefore() throws {
        let model = try Fixtures.model(raw: .float16)
        let batch = try Fixtures.batch(model, rows: 23, firstID: 0, seed: 4)
        func decoded(_ record: [UInt8]) throws -> EncodedBatch {
            let header = try #require(record.withUnsafeBytes { SegmentRecord.decodeHeader($0) })
            let entry = record.withUnsafeBytes {
                SegmentRecord.decodePayload(UnsafeRawBufferPointer(rebasing: $0[SegmentRecord.headerSize...]), header: header)
            }
            if case .batch(let batch) = entry { return batch }
            Issue.record("not a batch record: \(entry)")
            return EncodedBatch(ids: [], primary: [], spill: [], primaryCodes: [], spillCodes: [], vectors: [])
        }
        let full = try decoded(SegmentRecord.encode(batch, dimension: model.dimension))
        let half = try decoded(SegmentRecord.encode(batch, dimension: model.dimension, halfVectors: true))
        #expect(full == batch)
        var rounded = [UInt16](repeating: 0, count: batch.vectors.count)
        var expectedValues = [Float](repeating: 0, count: batch.vectors.count)
        Kernels.floatToHalf(batch.vectors, &rounded, count: rounded.count)
        Kernels.halfToFloat(rounded, &expectedValues, count: rounded.count)
        #expect(half.vectors == expectedValues && half.ids == batch.ids && half.primaryCodes == batch.primaryCodes)
        var fromFull = IVFIndex(model: model), fromHalf = IVFIndex(model: model)
        try fromFull.append(full)
        try fromHalf.append(half)
        #expect(fromFull.storedState == fromHalf.storedState)
    }

    @Test func halfVectorsAtAnOddOffsetRoundTrip() throws {
        // A list record with an odd code width and an odd row count puts the vectors at an odd offset.
        let rows = 5, dimension = 3
        let vectors: [Float] = (0 ..< rows * dimension).map { Float($0) * 0.25 - 1 }
        let export = ListExport(list: 2, ids: (0 ..< Int64(rows)).map { $0 * 7 }, codes: (0 ..< UInt8(rows)).map { $0 }, vectors: vectors)
        let record = SegmentRecord.encode(list: export, codeWidth: 1, dimension: dimension, halfVectors: true)
        let header = try #require(record.withUnsafeBytes { SegmentRecord.decodeHeader($0) })
        #expect(header.payloadLength == 4 + rows * (8 + 1 + 2 * dimension))
        let decoded = record.withUnsafeBytes { SegmentRecord.decodePayload(UnsafeRawBufferPointer(rebasing: $0[SegmentRecord.headerSize...]), header: header) }
        #expect(decoded == .list(export))  // these values are exact in float16
    }

    @Test func appendsSurviveReopenAsAnIdenticalIndex() throws {
        let dir = try TemporaryDirectory()
        let model = try Fixtures.model()
        let (store, expected) = try storeWithBatches(dir, "docs", model, rowsPerBatch: 50)
        try store.assign(shardMapVersion: 4, ownedLists: [1, 3])

        let reopened = try CollectionStore.open(dataDirectory: dir.path, name: "docs")
        #expect(reopened.truncatedBytes == 0)
        #expect(reopened.index.storedState == expected.storedState)
        #expect(reopened.store.storedRows == 150)
        #expect(reopened.store.manifest.shardMapVersion == 4 && reopened.store.manifest.ownedLists == [1, 3])
        #expect(ModelCodec.encode(reopened.store.model) == ModelCodec.encode(model))
        #expect(try CollectionStore.existingCollections(dataDirectory: dir.path) == ["docs"])

        // Appending after a reopen continues the same segment.
        try reopened.store.append(try Fixtures.batch(model, rows: 5, firstID: 500, seed: 9))
        #expect(try CollectionStore.open(dataDirectory: dir.path, name: "docs").index.count == 155)
    }

    @Test func tornTailIsTruncatedOnReopen() throws {
        let dir = try TemporaryDirectory()
        let model = try Fixtures.model()
        let store = try CollectionStore.create(dataDirectory: dir.path, name: "c", model: model)
        let first = try Fixtures.batch(model, rows: 40, firstID: 0, seed: 1)
        try store.append(first)
        let path = segmentPath(dir, "c", 1)
        let committed = try bytes(of: path)

        // A crash mid-write leaves any prefix of the next record: cut at several points.
        let torn = SegmentRecord.encode(try Fixtures.batch(model, rows: 40, firstID: 40, seed: 2), dimension: model.dimension)
        for cut in [1, SegmentRecord.headerSize - 1, SegmentRecord.headerSize + 3, torn.count - 1] {
            try write(committed + torn.prefix(cut), to: path)
            let reopened = try CollectionStore.open(dataDirectory: dir.path, name: "c")
            #expect(reopened.truncatedBytes == cut)
            #expect(reopened.index.count == 40)
            #expect(try bytes(of: path) == committed)
        }
        // A complete-length record whose payload never reached the disk (zeros) is torn too.
        var zeroed = torn
        for i in SegmentRecord.headerSize ..< zeroed.count { zeroed[i] = 0 }
        try write(committed + zeroed, to: path)
        let recovered = try CollectionStore.open(dataDirectory: dir.path, name: "c")
        #expect(recovered.truncatedBytes == zeroed.count && recovered.index.count == 40)

        // Appends continue cleanly after the cut.
        try recovered.store.append(try Fixtures.batch(model, rows: 3, firstID: 900, seed: 3))
        #expect(try CollectionStore.open(dataDirectory: dir.path, name: "c").index.count == 43)
    }

    @Test func damagedCommittedRecordsAreSkippedAndReportedNotFatal() throws {
        let dir = try TemporaryDirectory()
        let model = try Fixtures.model()
        let store = try CollectionStore.create(dataDirectory: dir.path, name: "c", model: model)
        try store.append(try Fixtures.batch(model, rows: 20, firstID: 0, seed: 1))
        let secondOffset = try bytes(of: segmentPath(dir, "c", 1)).count
        try store.append(try Fixtures.batch(model, rows: 20, firstID: 20, seed: 2))
        let path = segmentPath(dir, "c", 1)
        let intact = try bytes(of: path)

        // A flipped payload byte in the first record: an intact record follows, so it is not a
        // torn tail. The first record's rows are missing (a replica must supply them), the
        // second's are served, and nothing is cut from the file.
        var flipped = intact
        flipped[SegmentRecord.headerSize + 5] ^= 0x40
        try write(flipped, to: path)
        let damaged = try CollectionStore.open(dataDirectory: dir.path, name: "c")
        #expect(damaged.damage.count == 1)
        #expect(damaged.damage.first?.path == path && damaged.damage.first?.offset == 0 && damaged.damage.first?.length == secondOffset)
        #expect(damaged.damage.first?.description.contains("byte 0") == true)
        #expect(damaged.index.liveCount == 20 && damaged.index.row(of: 25) != nil && damaged.index.row(of: 5) == nil)
        #expect(try bytes(of: path) == flipped, "nothing may be truncated when committed data is damaged")

        // A damaged header of the second record, once the manifest has recorded it as committed.
        try write(intact, to: path)
        try CollectionStore.open(dataDirectory: dir.path, name: "c").store.checkpoint()
        var header = intact
        header[secondOffset + 2] ^= 0xFF
        try write(header, to: path)
        let headerDamage = try CollectionStore.open(dataDirectory: dir.path, name: "c")
        #expect(headerDamage.damage.map(\.offset) == [secondOffset] && headerDamage.index.liveCount == 20)

        // Committed bytes that disappeared still stop the open: the manifest promised them.
        try write(Array(intact.prefix(secondOffset)), to: path)
        let short = #expect(throws: CollectionStoreError.self) { try CollectionStore.open(dataDirectory: dir.path, name: "c") }
        guard case .segmentShorterThanCommitted? = short else { Issue.record("\(String(describing: short))"); return }
    }

    @Test func deletionsListCopiesAndRewritesSurviveAReopen() throws {
        let dir = try TemporaryDirectory()
        let model = try Fixtures.model()
        let store = try CollectionStore.create(dataDirectory: dir.path, name: "c", model: model)
        var expected = IVFIndex(model: model)
        expected.enableRowLookup()
        let first = try Fixtures.batch(model, rows: 40, firstID: 0, seed: 1)
        try store.append(first)
        try expected.upsert(first)
        // The same ids again: replaced, not duplicated.
        let again = try Fixtures.batch(model, rows: 10, firstID: 0, seed: 9)
        try store.append(again)
        try expected.upsert(again)
        try store.appendDeletion([3, 4, 30])
        expected.remove(ids: [3, 4, 30])
        let list = (0 ..< model.nlist).first { expected.lists[$0].count > 0 }!
        var copy = expected.export(list: list)
        copy.ids = copy.ids.map { $0 + 1000 }
        try store.appendList(copy)
        try expected.replace(list: list, with: copy)
        let reopened = try CollectionStore.open(dataDirectory: dir.path, name: "c")
        #expect(reopened.index.liveCount == expected.liveCount)
        for l in 0 ..< model.nlist { #expect(reopened.index.digest(of: l) == expected.digest(of: l)) }

        // Compaction keeps exactly the live rows, in fewer bytes.
        let before = reopened.store.diskBytes
        try reopened.store.rewrite(from: reopened.index)
        let rewritten = try CollectionStore.open(dataDirectory: dir.path, name: "c")
        #expect(rewritten.index.count == expected.liveCount && rewritten.index.liveCount == expected.liveCount)
        for l in 0 ..< model.nlist { #expect(rewritten.index.digest(of: l) == expected.digest(of: l)) }
        #expect(rewritten.store.diskBytes < before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/collections/c").filter { $0.hasSuffix(".qseg") }.count == 1)
        // Appends go on after a rewrite.
        try rewritten.store.append(try Fixtures.batch(model, rows: 5, firstID: 500, seed: 4))
        #expect(try CollectionStore.open(dataDirectory: dir.path, name: "c").index.liveCount == expected.liveCount + 5)
    }

    @Test func rotatesSegmentsAndReplaysThemAll() throws {
        let dir = try TemporaryDirectory()
        let model = try Fixtures.model()
        let options = CollectionStore.Options(segmentBytesLimit: 8 << 10)
        let store = try CollectionStore.create(dataDirectory: dir.path, name: "c", model: model, options: options)
        var expected = IVFIndex(model: model)
        for part in 0 ..< 12 {
            let batch = try Fixtures.batch(model, rows: 30, firstID: Int64(part * 30), seed: UInt64(part))
            try store.append(batch)
            try expected.append(batch)
        }
        #expect(store.manifest.segments.count > 3)
        #expect(store.manifest.segments.dropLast().allSatisfy { $0.sealed && $0.committedBytes <= 8 << 10 })
        let reopened = try CollectionStore.open(dataDirectory: dir.path, name: "c", options: options)
        #expect(reopened.index.storedState == expected.storedState)

        // Sealed segments are held to their recorded length.
        let sealed = segmentPath(dir, "c", 1)
        try write(try bytes(of: sealed) + [0, 0, 0], to: sealed)
        let error = #expect(throws: CollectionStoreError.self) { try CollectionStore.open(dataDirectory: dir.path, name: "c") }
        guard case .corruptRecord(sealed, _, _)? = error else { Issue.record("\(String(describing: error))"); return }
    }

    @Test func leftoversOfInterruptedStepsAreRemoved() throws {
        let dir = try TemporaryDirectory()
        let model = try Fixtures.model()
        let store = try CollectionStore.create(dataDirectory: dir.path, name: "c", model: model)
        try store.append(try Fixtures.batch(model, rows: 10, firstID: 0, seed: 1))
        let root = CollectionStore.collectionsFolder(dataDirectory: dir.path)
        let folder = root + "/c"
        try FileManager.default.createDirectory(atPath: root + "/~creating-d-1234", withIntermediateDirectories: false)
        try write([1, 2, 3], to: folder + "/" + SegmentFile.name(number: 99))
        try write([1, 2, 3], to: folder + "/MANIFEST.tmp-1-2")
        #expect(try CollectionStore.existingCollections(dataDirectory: dir.path) == ["c"])
        #expect(try CollectionStore.open(dataDirectory: dir.path, name: "c").index.count == 10)
        let remaining = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(remaining == ["MANIFEST", "model-1.qvm", SegmentFile.name(number: 1)])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root) == ["c"])

        // A stop between naming a new, empty active segment and creating its file.
        _ = try CollectionStore.create(dataDirectory: dir.path, name: "e", model: model)
        try FileManager.default.removeItem(atPath: segmentPath(dir, "e", 1))
        let reopened = try CollectionStore.open(dataDirectory: dir.path, name: "e")
        try reopened.store.append(try Fixtures.batch(model, rows: 4, firstID: 0, seed: 2))
        #expect(try CollectionStore.open(dataDirectory: dir.path, name: "e").index.count == 4)
    }

    @Test func modelReplacementOnlyWhileEmptyAndDropRemovesTheFolder() throws {
        let dir = try TemporaryDirectory()
        let store = try CollectionStore.create(dataDirectory: dir.path, name: "c", model: try Fixtures.model(version: 1))
        try store.assign(shardMapVersion: 1, ownedLists: [0])
        let second = try Fixtures.model(version: 2)
        try store.replaceModel(second)
        #expect(store.manifest.modelVersion == 2 && store.manifest.ownedLists.isEmpty)
        try store.append(try Fixtures.batch(second, rows: 5, firstID: 0, seed: 1))
        #expect(throws: CollectionStoreError.modelNotReplaceable(name: "c", installedVersion: 2, storedRows: 5)) {
            try store.replaceModel(try Fixtures.model(version: 3))
        }
        let reopened = try CollectionStore.open(dataDirectory: dir.path, name: "c")
        #expect(reopened.store.model.version == 2 && reopened.index.count == 5)

        #expect(try reopened.store.drop() > 0)
        #expect(try CollectionStore.existingCollections(dataDirectory: dir.path).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: CollectionStore.collectionsFolder(dataDirectory: dir.path)).isEmpty)
        #expect(throws: CollectionStoreError.invalidName("..")) {
            _ = try CollectionStore.create(dataDirectory: dir.path, name: "..", model: second)
        }
    }
}
