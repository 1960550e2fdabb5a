import Testing

@testable import QuiverIndex

/// Deleting, replacing and copying rows by id, as shard workers do.
@Suite struct RowChangeTests {
    static let data = SyntheticData(count: 1200, queries: 20, dimension: 16, clusters: 12, normalize: true)

    static func model(_ encoding: ListEncoding, raw: RawVectorPrecision = .float32) throws -> IVFModel {
        let configuration = IVFConfiguration(dimension: 16, metric: .innerProduct, nlist: 12, encoding: encoding,
                                             spillLambda: encoding == .flat ? nil : 1, rawVectors: raw, trainingIterations: 6)
        return try IVFModel.train(sample: data.base, configuration: configuration)
    }

    static func batch(_ model: IVFModel, rows: Range<Int>, idOffset: Int64 = 0) throws -> EncodedBatch {
        var prepared = data.base.gathering(Array(rows))
        model.prepare(&prepared)
        return try IVFIndex(model: model).encode(prepared: prepared, ids: rows.map { Int64($0) + idOffset },
                                                 assignment: model.assign(prepared))
    }

    static func search(_ index: IVFIndex, k: Int = 10) throws -> SearchResults {
        try index.search(data.queries, parameters: SearchParameters(k: k, nprobe: 12, reorderK: 30))
    }

    @Test func listsGrowGeometricallyAcrossManySmallBatches() throws {
        // Reserving exactly count + additional per batch reallocated (and copied) a list on
        // every batch; growth by doubling reallocates it a logarithmic number of times.
        let model = try Self.model(.fastScan)
        var index = IVFIndex(model: model)
        var capacities = Set<Int>()
        for part in 0 ..< 200 {
            try index.append(try Self.batch(model, rows: (part * 6) % 1194 ..< (part * 6) % 1194 + 6, idOffset: Int64(part) * 10_000))
            capacities.insert(index.lists[0].codes.capacity)
        }
        #expect(index.lists[0].count > 100)
        #expect(capacities.count <= 12, "list 0's code buffer was reallocated \(capacities.count) times")
    }

    @Test(arguments: [ListEncoding.fastScan, .pq8, .flat])
    func upsertingTheSameBatchTwiceIsStoringItOnce(_ encoding: ListEncoding) throws {
        let model = try Self.model(encoding)
        var once = IVFIndex(model: model)
        once.enableRowLookup()
        try once.upsert(try Self.batch(model, rows: 0 ..< 1200))
        var twice = once
        #expect(try twice.upsert(try Self.batch(model, rows: 0 ..< 1200)) == 1200)
        #expect(twice.liveCount == 1200 && twice.entryCount == once.entryCount)
        #expect(try Self.search(twice).ids == Self.search(once).ids)
        for list in 0 ..< model.nlist { #expect(twice.digest(of: list) == once.digest(of: list)) }
    }

    @Test(arguments: [ListEncoding.fastScan, .pq8, .flat])
    func removedIdsAreNeverFoundAndTheRestAnswerAsBefore(_ encoding: ListEncoding) throws {
        let model = try Self.model(encoding)
        var index = IVFIndex(model: model)
        index.enableRowLookup()
        try index.upsert(try Self.batch(model, rows: 0 ..< 1200))
        let removed = Set((0 ..< 1200).filter { $0 % 3 == 0 }.map(Int64.init))
        #expect(index.remove(ids: removed) == removed.count)
        #expect(index.remove(ids: removed) == 0)
        #expect(index.liveCount == 1200 - removed.count)
        // The same as an index that never held them.
        var fresh = IVFIndex(model: model)
        fresh.enableRowLookup()
        try fresh.upsert(try Self.batch(model, rows: 0 ..< 1200).selecting((0 ..< 1200).filter { $0 % 3 != 0 }))
        let answer = try Self.search(index)
        #expect(!answer.ids.contains { removed.contains($0) })
        #expect(answer.ids == (try Self.search(fresh)).ids)
        for list in 0 ..< model.nlist { #expect(index.digest(of: list) == fresh.digest(of: list)) }
        #expect(try Self.search(index.compacted()).ids == answer.ids)
        #expect(index.compacted().count == fresh.count)
    }

    @Test func replacingChangesTheVectorOfAnID() throws {
        let model = try Self.model(.fastScan)
        var index = IVFIndex(model: model)
        index.enableRowLookup()
        try index.upsert(try Self.batch(model, rows: 0 ..< 1200))
        // Row 5 takes the vector of row 700: a search for 700's vector now finds both ids at the top.
        var moved = try Self.batch(model, rows: 700 ..< 701)
        moved.ids = [5]
        #expect(try index.upsert(moved) == 1)
        #expect(index.liveCount == 1200)
        let query = Self.data.base.gathering([700])
        let hits = try index.search(query, parameters: SearchParameters(k: 2, nprobe: 12, reorderK: 30)).ids
        #expect(Set(hits) == [5, 700])
        #expect(index.lists(of: 5) == index.lists(of: 700))
    }

    @Test(arguments: [ListEncoding.fastScan, .pq8, .flat])
    func aListCopiedFromAnotherReplicaMakesThemEqual(_ encoding: ListEncoding) throws {
        let model = try Self.model(encoding, raw: encoding == .pq8 ? .float16 : .float32)
        var healthy = IVFIndex(model: model)
        healthy.enableRowLookup()
        try healthy.upsert(try Self.batch(model, rows: 0 ..< 1200))
        healthy.remove(ids: [1, 2, 3])
        // A replica that missed the second half and the removals, and holds a stale id.
        var behind = IVFIndex(model: model)
        behind.enableRowLookup()
        try behind.upsert(try Self.batch(model, rows: 0 ..< 600))
        try behind.upsert(try Self.batch(model, rows: 0 ..< 50, idOffset: 5000))
        for list in 0 ..< model.nlist { try behind.replace(list: list, with: healthy.export(list: list)) }
        for list in 0 ..< model.nlist { #expect(behind.digest(of: list) == healthy.digest(of: list)) }
        #expect(behind.liveCount == healthy.liveCount)
        #expect(try Self.search(behind).ids == Self.search(healthy).ids)
        #expect(try Self.search(behind).distances == Self.search(healthy).distances)
        #expect(try Self.search(behind.compacted()).ids == Self.search(healthy).ids)
    }

    @Test func badCopiesAreRefusedBeforeAnythingChanges() throws {
        let model = try Self.model(.fastScan)
        var index = IVFIndex(model: model)
        index.enableRowLookup()
        try index.upsert(try Self.batch(model, rows: 0 ..< 100))
        let before = index.digest(of: 3)
        var copy = index.export(list: 3)
        copy.codes[0] = 16
        #expect(throws: IndexError.self) { try index.replace(list: 3, with: copy) }
        copy = index.export(list: 3)
        copy.ids += [copy.ids.first ?? 0]
        #expect(throws: IndexError.self) { try index.replace(list: 3, with: copy) }
        #expect(throws: IndexError.self) { try index.replace(list: 4, with: index.export(list: 3)) }
        #expect(index.digest(of: 3) == before)
    }

    @Test(arguments: [ListEncoding.fastScan, .pq8, .flat])
    func liveRowsRebuildTheIndex(_ encoding: ListEncoding) throws {
        let model = try Self.model(encoding)
        var index = IVFIndex(model: model)
        index.enableRowLookup()
        try index.upsert(try Self.batch(model, rows: 0 ..< 1200))
        index.remove(ids: (0 ..< 1200).filter { $0 % 5 == 0 }.map(Int64.init))
        // A row copied into a third list by a repair.
        var crowdedList = index.export(list: 0)
        let moved = index.export(list: 1).ids.first { !index.lists(of: $0).contains(0) }!
        let source = index.export(list: 1)
        let at = source.ids.firstIndex(of: moved)!
        let width = EncodedBatch.codeWidth(model.configuration)
        crowdedList.ids.append(moved)
        crowdedList.codes += source.codes[at * width ..< (at + 1) * width]
        crowdedList.vectors += source.vectors[at * model.dimension ..< (at + 1) * model.dimension]
        try index.replace(list: 0, with: crowdedList)
        let live = index.liveRows(rowsPerBatch: 100)
        var rebuilt = IVFIndex(model: model)
        rebuilt.enableRowLookup()
        for batch in live.batches { try rebuilt.upsert(batch) }
        for list in live.lists { try rebuilt.replace(list: list.list, with: list) }
        #expect(rebuilt.liveCount == index.liveCount && rebuilt.count == index.liveCount)
        for list in 0 ..< model.nlist { #expect(rebuilt.digest(of: list) == index.digest(of: list)) }
        #expect(try Self.search(rebuilt).ids == Self.search(index).ids)
    }
}
