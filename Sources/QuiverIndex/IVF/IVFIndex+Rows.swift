/// Changing stored rows by id: what a shard worker needs to delete, replace (upsert) and copy
/// lists between replicas. All of it needs `enableRowLookup()` first.
///
/// A removed or replaced row keeps its slot (its id becomes −1 and it has no list entries, so no
/// search reaches it) until the index is rebuilt without it (`compacted`).
extension IVFIndex {
    /// Builds the row lookup from the rows stored so far. Later appends keep it current.
    public mutating func enableRowLookup() {
        guard rowLookup == nil else { return }
        var lookup = RowLookup(capacity: externalIDs.count)
        lookup.digests = [ListDigest](repeating: ListDigest(), count: model.nlist)
        rowLookup = lookup
        for (row, id) in externalIDs.enumerated() {
            rowLookup!.addRow()
            if id >= 0 { rowLookup!.rowsByID.set(id, row: UInt32(row)) } else { rowLookup!.deadRows += 1 }
        }
        for (list, entries) in lists.enumerated() {
            for row in entries.rows { trackEntry(list: Int32(list), row: row, id: externalIDs[Int(row)]) }
        }
    }

    mutating func trackEntry(list: Int32, row: UInt32, id: Int64) {
        if rowLookup!.lists.count <= 2 * Int(row) {
            while rowLookup!.lists.count <= 2 * Int(row) { rowLookup!.addRow() }
        }
        if let previous = rowLookup!.rowsByID[id], previous != row, !rowLookup!.lists(of: previous).isEmpty {
            // An append of an id that is already stored (the plain add path): the newer row wins.
            removeRow(previous)
        }
        rowLookup!.rowsByID.set(id, row: row)
        rowLookup!.add(list: list, to: row)
        rowLookup!.digests[Int(list)].insert(id)
    }

    /// The row holding `id`, if it is stored.
    public func row(of id: Int64) -> Int? {
        precondition(rowLookup != nil, "row lookup is off")
        return rowLookup!.rowsByID[id].map(Int.init)
    }

    /// Vectors stored and not removed.
    public var liveCount: Int { count - (rowLookup?.deadRows ?? 0) }

    /// The lists `id` has entries in (empty when it is not stored).
    public func lists(of id: Int64) -> [Int32] {
        guard let row = rowLookup?.rowsByID[id] else { return [] }
        return rowLookup!.lists(of: row)
    }

    /// Stores `batch`, first removing every row whose id it carries (a batch that repeats an id
    /// keeps its last occurrence). Storing the same batch twice leaves the index as once.
    /// Returns how many stored ids were replaced.
    @discardableResult
    public mutating func upsert(_ batch: EncodedBatch) throws(IndexError) -> Int {
        precondition(rowLookup != nil, "row lookup is off")
        try batch.validate(for: model)
        var last: [Int64: Int] = [:]
        for (position, id) in batch.ids.enumerated() {
            guard id >= 0 else { throw .invalidParameter("id \(id) at row \(position) is negative") }
            last[id] = position
        }
        let unique = last.count == batch.count ? batch : batch.selecting((0 ..< batch.count).filter { last[batch.ids[$0]] == $0 })
        let replaced = remove(ids: unique.ids)
        try append(unique)
        return replaced
    }

    /// Removes the rows with these ids from every list they are in; returns how many were stored.
    @discardableResult
    public mutating func remove<IDs: Sequence<Int64>>(ids: IDs) -> Int {
        precondition(rowLookup != nil, "row lookup is off")
        var removed = 0
        for id in ids {
            guard let row = rowLookup!.rowsByID[id] else { continue }
            removeRow(row)
            removed += 1
        }
        return removed
    }

    private mutating func removeRow(_ row: UInt32) {
        let id = externalIDs[Int(row)]
        for list in rowLookup!.lists(of: row) {
            removeEntry(list: Int(list), row: row)
            _ = rowLookup!.remove(list: list, from: row)
            rowLookup!.digests[Int(list)].remove(id)
        }
        if rowLookup!.rowsByID[id] == row { rowLookup!.rowsByID.remove(id) }
        externalIDs[Int(row)] = -1
        rowLookup!.deadRows += 1
    }

    private mutating func removeEntry(list: Int, row: UInt32) {
        guard let position = lists[list].rows.firstIndex(of: row) else { return }
        lists[list].removeEntry(at: position, encoding: configuration.encoding, width: EncodedBatch.codeWidth(configuration),
                                dimension: model.dimension)
    }

    /// Size and id checksum of a list, equal on replicas holding the same rows.
    public func digest(of list: Int) -> ListDigest {
        if let rowLookup { return rowLookup.digests[list] }
        var digest = ListDigest()
        for row in lists[list].rows { digest.insert(externalIDs[Int(row)]) }
        return digest
    }

    /// The entries of `list`, as another replica needs them to hold the same list.
    public func export(list: Int) -> ListExport {
        let entries = lists[list]
        let config = configuration
        let width = EncodedBatch.codeWidth(config)
        var ids: [Int64] = []
        var codes: [UInt8] = []
        var vectors: [Float] = []
        ids.reserveCapacity(entries.count)
        codes.reserveCapacity(entries.count * width)
        for position in 0 ..< entries.count {
            let row = Int(entries.rows[position])
            ids.append(externalIDs[row])
            switch config.encoding {
            case .flat:
                vectors += entries.vectors[position * model.dimension ..< (position + 1) * model.dimension]
            case .fastScan, .pq8:
                codes += entries.entryCodes(position, paddedSubspaces: width, fastScan: config.encoding == .fastScan)
                if rawVectors.precision != .none { vectors += rawVectors.vector(row: row) }
            }
        }
        return ListExport(list: list, ids: ids, codes: codes, vectors: vectors)
    }

    /// Makes `list` hold exactly the entries of `export` (from another replica): its current
    /// entries go, rows are found by id (a row this index also holds in another list is reused
    /// and its raw vector refreshed) or created.
    public mutating func replace(list: Int, with export: ListExport) throws(IndexError) {
        precondition(rowLookup != nil, "row lookup is off")
        let config = configuration
        let width = EncodedBatch.codeWidth(config)
        let d = model.dimension
        let keepsVectors = config.encoding == .flat || rawVectors.precision != .none
        guard list >= 0, list < model.nlist, export.list == list else {
            throw .invalidParameter("list \(export.list) cannot replace list \(list) (nlist \(model.nlist))")
        }
        guard export.codes.count == export.count * width, export.vectors.count == (keepsVectors ? export.count * d : 0) else {
            throw .invalidParameter("list \(list) copy has \(export.codes.count) code bytes and \(export.vectors.count) values for \(export.count) entries")
        }
        if config.encoding == .fastScan, export.codes.contains(where: { $0 >= 16 }) {
            throw .invalidParameter("list \(list) copy holds a 4-bit code above 15")
        }
        if let bad = export.ids.firstIndex(where: { $0 < 0 }) { throw .invalidParameter("list \(list) copy has id \(export.ids[bad])") }
        if config.rawVectors == .float16 { try RawVectorStore.checkHalfRange(Matrix(rows: export.count, dimension: d, values: export.vectors)) }
        guard Set(export.ids).count == export.count else { throw .invalidParameter("list \(list) copy repeats an id") }

        for row in lists[list].rows {
            let id = externalIDs[Int(row)]
            rowLookup!.digests[list].remove(id)
            if rowLookup!.remove(list: Int32(list), from: row) {
                if rowLookup!.rowsByID[id] == row { rowLookup!.rowsByID.remove(id) }
                externalIDs[Int(row)] = -1
                rowLookup!.deadRows += 1
            }
        }
        lists[list].removeAll()
        guard export.count <= Self.maxRows - externalIDs.count else {
            throw .invalidParameter("an index holds at most \(Self.maxRows) rows")
        }
        export.codes.withUnsafeBufferPointer { codes in
            export.vectors.withUnsafeBufferPointer { vectors in
                for entry in 0 ..< export.count {
                    let id = export.ids[entry]
                    let vector = vectors.baseAddress.map { $0 + entry * d }
                    let row: UInt32
                    if let existing = rowLookup!.rowsByID[id] {
                        row = existing
                        if rawVectors.precision != .none, config.encoding != .flat, let vector { rawVectors.set(row: Int(row), vector) }
                    } else {
                        row = UInt32(externalIDs.count)
                        externalIDs.append(id)
                        rowLookup!.addRow()
                        rowLookup!.rowsByID.set(id, row: row)
                        if rawVectors.precision != .none, config.encoding != .flat, let vector { rawVectors.append(vector, count: 1) }
                    }
                    switch config.encoding {
                    case .fastScan: lists[list].appendFastScan(row: row, entryCodes: codes.baseAddress! + entry * width, paddedSubspaces: width)
                    case .pq8: lists[list].appendCodes(row: row, entryCodes: codes.baseAddress! + entry * width, subspaces: width)
                    case .flat: lists[list].appendVector(row: row, vector: vector!, dimension: d)
                    }
                    rowLookup!.add(list: Int32(list), to: row)
                    rowLookup!.digests[list].insert(id)
                }
            }
        }
    }

    /// The live rows as batches (each row once: its raw vector and the codes of up to two lists),
    /// plus the lists that hold a row with more than two entries, which only a list copy can
    /// express: replayed in this order (`upsert` the batches, then `replace` the lists) they
    /// rebuild this index. What a worker rewrites its segments from.
    public func liveRows(rowsPerBatch: Int = 8192) -> (batches: [EncodedBatch], lists: [ListExport]) {
        let config = configuration
        let width = EncodedBatch.codeWidth(config)
        let d = model.dimension
        let fastScan = config.encoding == .fastScan
        var firstList = [Int32](repeating: -1, count: externalIDs.count)
        var firstPosition = [Int32](repeating: -1, count: externalIDs.count)
        var secondList = [Int32](repeating: -1, count: externalIDs.count)
        var secondPosition = [Int32](repeating: -1, count: externalIDs.count)
        var crowded = Set<Int>()
        for (list, entries) in lists.enumerated() {
            for (position, row) in entries.rows.enumerated() {
                let r = Int(row)
                if firstList[r] < 0 {
                    (firstList[r], firstPosition[r]) = (Int32(list), Int32(position))
                } else if secondList[r] < 0 {
                    (secondList[r], secondPosition[r]) = (Int32(list), Int32(position))
                } else {
                    crowded.insert(list)
                }
            }
        }
        var batches: [EncodedBatch] = []
        var batch = EncodedBatch(ids: [], primary: [], spill: [], primaryCodes: [], spillCodes: [], vectors: [])
        let spilling = secondList.contains { $0 >= 0 }
        func flush() {
            if batch.count > 0 {
                if !spilling { batch.spill = [] }
                batches.append(batch)
            }
            batch = EncodedBatch(ids: [], primary: [], spill: [], primaryCodes: [], spillCodes: [], vectors: [])
        }
        for row in 0 ..< externalIDs.count where firstList[row] >= 0 {
            let primary = Int(firstList[row])
            batch.ids.append(externalIDs[row])
            batch.primary.append(firstList[row])
            batch.spill.append(secondList[row])
            if width > 0 {
                batch.primaryCodes += lists[primary].entryCodes(Int(firstPosition[row]), paddedSubspaces: width, fastScan: fastScan)
                if spilling {
                    batch.spillCodes += secondList[row] >= 0
                        ? lists[Int(secondList[row])].entryCodes(Int(secondPosition[row]), paddedSubspaces: width, fastScan: fastScan)
                        : [UInt8](repeating: 0, count: width)
                }
            }
            if config.encoding == .flat {
                let position = Int(firstPosition[row])
                batch.vectors += lists[primary].vectors[position * d ..< (position + 1) * d]
            } else if rawVectors.precision != .none {
                batch.vectors += rawVectors.vector(row: row)
            }
            if batch.count == rowsPerBatch { flush() }
        }
        flush()
        return (batches, crowded.sorted().map { export(list: $0) })
    }

    /// The same lists and rows without the slots of removed rows (rows renumbered).
    public func compacted() -> IVFIndex {
        var rebuilt = IVFIndex(model: model)
        if rowLookup != nil { rebuilt.enableRowLookup() }
        for list in 0 ..< model.nlist where lists[list].count > 0 {
            // Replace never fails on an export of a valid list.
            try! rebuilt.replace(list: list, with: export(list: list))
        }
        if rowLookup == nil { rebuilt.rowLookup = nil }
        return rebuilt
    }
}

extension ListDigest {
    /// Counts `id` in (a digest of ids can be built anywhere, e.g. from a list copy in flight).
    public mutating func insert(_ id: Int64) {
        count += 1
        checksum ^= Self.mix(id)
    }

    public mutating func remove(_ id: Int64) {
        count -= 1
        checksum ^= Self.mix(id)
    }
}

extension EncodedBatch {
    /// The batch's rows at `positions`, in that order.
    public func selecting(_ positions: [Int]) -> EncodedBatch {
        let n = count
        let width = n > 0 ? primaryCodes.count / n : 0
        let d = n > 0 ? vectors.count / n : 0
        var result = EncodedBatch(ids: [], primary: [], spill: [], primaryCodes: [], spillCodes: [], vectors: [])
        for position in positions {
            result.ids.append(ids[position])
            result.primary.append(primary[position])
            if !spill.isEmpty { result.spill.append(spill[position]) }
            result.primaryCodes += primaryCodes[position * width ..< (position + 1) * width]
            if !spillCodes.isEmpty { result.spillCodes += spillCodes[position * width ..< (position + 1) * width] }
            if d > 0 { result.vectors += vectors[position * d ..< (position + 1) * d] }
        }
        return result
    }
}
