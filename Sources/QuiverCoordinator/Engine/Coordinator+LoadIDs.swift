import QuiverCluster
import QuiverIndex
import QuiverProtocol

/// What the coordinator remembers of a named load (LoadRequest.load_id), so that sending a batch
/// again stores it once: the id ranges its rows were given, and the batches stored so far.
struct LoadLedger: Codable, Sendable, Equatable {
    /// Rows per id range, fixed when the load first arrives: its expected size (so a load of n
    /// rows takes exactly n ids), at most 2^20.
    var chunkRows: Int?
    /// First id of each chunk of `chunkRows` rows, reserved when a row of it first arrives.
    var chunkBases: [Int: Int64] = [:]
    /// Rows acknowledged, as sorted disjoint ranges (lower, upper).
    var acknowledged: [[Int]] = []
    /// First rows of the batches sent to the workers.
    var attempted: Set<Int> = []

    /// Records `rows` as acknowledged; returns how many of them were not before.
    mutating func acknowledge(_ rows: Range<Int>) -> Int {
        var ranges = acknowledged.map { $0[0] ..< $0[1] }
        let before = ranges.reduce(0) { $0 + $1.count }
        ranges.append(rows)
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var merged: [Range<Int>] = []
        for range in ranges {
            if let last = merged.last, last.upperBound >= range.lowerBound {
                merged[merged.count - 1] = last.lowerBound ..< max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
        acknowledged = merged.map { [$0.lowerBound, $0.upperBound] }
        return merged.reduce(0) { $0 + $1.count } - before
    }
}

/// How a batch with caller ids meets ids already stored.
enum DuplicatePolicy: Sendable {
    case reject
    case replace
}

extension Coordinator {
    /// The most rows one id range of a named load covers: row r of the load gets
    /// base(r / chunkRows) + r % chunkRows.
    static let maxChunkRows = 1 << 20

    private func ledger(_ name: String, _ load: String) throws(CoordinatorError) -> LoadLedger {
        if let cached = entries[name]?.loads[load] { return cached }
        return try store.loadLedger(load, collection: name) ?? LoadLedger()
    }

    private func saveLedger(_ name: String, incarnation: UInt64, _ load: String, _ ledger: LoadLedger) throws(CoordinatorError) {
        guard entries[name]?.incarnation == incarnation else { throw .notFound("collection \"\(name)\" was dropped during the load") }
        try store.saveLedger(ledger, load: load, collection: name)
        entries[name]!.loads[load] = ledger
    }

    /// The ids of `rows` of a named load: the same on every attempt. `expectedRows` (the
    /// load's size, 0 when unknown) sizes its id ranges the first time the load is seen.
    func loadIDs(_ name: String, incarnation: UInt64, load: String, rows: Range<Int>,
                 expectedRows: Int = 0) throws(CoordinatorError) -> [Int64] {
        var ledger = try ledger(name, load)
        var changed = false
        if ledger.chunkRows == nil {
            ledger.chunkRows = expectedRows > 0 ? min(expectedRows, Self.maxChunkRows) : Self.maxChunkRows
            changed = true
        }
        let chunkRows = ledger.chunkRows!
        for chunk in rows.lowerBound / chunkRows ... (rows.upperBound - 1) / chunkRows where ledger.chunkBases[chunk] == nil {
            ledger.chunkBases[chunk] = try reserveIDs(name, incarnation: incarnation, count: chunkRows, callerIDs: false)
            changed = true
        }
        if changed { try saveLedger(name, incarnation: incarnation, load, ledger) }
        return rows.map { ledger.chunkBases[$0 / chunkRows]! + Int64($0 % chunkRows) }
    }

    /// Whether a batch of caller ids must be checked against stored ids first: yes, unless it
    /// is a named load's batch that was sent to the workers before (its ids are there from
    /// that attempt).
    func duplicateCheck(for batch: LoadBatch, name: String) -> DuplicatePolicy? {
        guard batch.ids != nil else { return nil }
        if let load = batch.loadID, (try? ledger(name, load))?.attempted.contains(batch.firstRow) == true { return nil }
        return batch.onDuplicate == .replace ? .replace : .reject
    }

    func batchAttempted(_ name: String, incarnation: UInt64, batch: LoadBatch) throws(CoordinatorError) {
        guard let load = batch.loadID else { return }
        var ledger = try ledger(name, load)
        guard ledger.attempted.insert(batch.firstRow).inserted else { return }
        try saveLedger(name, incarnation: incarnation, load, ledger)
    }

    /// Counts a stored batch once, however often it was sent. The count (with the batch named
    /// as the load's last counted) is written before the ledger; a crash between the two leaves
    /// the named batch out of the saved ledger, so it is folded in before anything of the load
    /// is counted again: resent, it is then no longer fresh, whichever resent batch ends first.
    func batchAcknowledged(_ name: String, incarnation: UInt64, batch: LoadBatch, replaced: Int) {
        guard let load = batch.loadID, var ledger = try? ledger(name, load) else {
            recordStored(name, incarnation: incarnation, rows: max(0, batch.rows - replaced))
            return
        }
        if let counted = entries[name]?.record.countedBatches?[load] {
            _ = ledger.acknowledge(counted.firstRow ..< counted.firstRow + counted.rows)
        }
        let fresh = ledger.acknowledge(batch.firstRow ..< batch.firstRow + batch.rows)
        if fresh > 0 {
            do {
                try update(name, incarnation: incarnation) { entry in
                    entry.record.vectorCount = UInt64(max(0, Int64(entry.record.vectorCount) + Int64(max(0, fresh - replaced))))
                    var recent = entry.record.countedBatches ?? [:]
                    recent[load] = CollectionRecord.CountedBatch(firstRow: batch.firstRow, rows: batch.rows)
                    if recent.count > Self.countedLoadsKept, let other = recent.keys.first(where: { $0 != load }) { recent[other] = nil }
                    entry.record.countedBatches = recent
                }
            } catch {
                logger.error("cannot persist the vector count of \(name): \(error)")
            }
        }
        try? saveLedger(name, incarnation: incarnation, load, ledger)
    }

    /// Loads whose last counted batch the collection record remembers.
    static let countedLoadsKept = 64

    /// Checks caller ids against every worker. An id stored with the same vector is the batch
    /// being sent again (left to be replaced by itself); one stored with another vector is a
    /// conflict: refused, or removed first when the caller asked to replace. Returns how many
    /// stored ids the batch replaces.
    nonisolated func resolveDuplicates(ids: [Int64], vectors: Matrix, serving: Serving,
                                       policy: DuplicatePolicy) async throws(CoordinatorError) -> Int {
        var prepared = vectors
        serving.model.prepare(&prepared)
        let d = prepared.dimension
        let rowOf = Dictionary(ids.enumerated().map { ($1, $0) }, uniquingKeysWith: { _, last in last })
        let pool = pool
        // Every worker is asked: an id may live on any of them. One that cannot answer leaves
        // the check incomplete, and the batch is refused rather than risk storing an id twice.
        let answers = await withTaskGroup(of: Result<(ids: [Int64], vectors: [Float]), CoordinatorError>.self) { group in
            for worker in serving.shardMap.workers {
                group.addTask {
                    do throws(CoordinatorError) {
                        return .success(try await pool.lookupIDs(ids, collection: serving.name, modelVersion: serving.model.version, on: worker))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var answers: [Result<(ids: [Int64], vectors: [Float]), CoordinatorError>] = []
            for await answer in group { answers.append(answer) }
            return answers
        }
        var found: [(ids: [Int64], vectors: [Float])] = []
        for answer in answers {
            switch answer {
            case .success(let value): found.append(value)
            case .failure(let error): throw .unavailable("cannot check the batch's ids against every worker: \(error.description)")
            }
        }
        var conflicting = Set<Int64>()
        var present = Set<Int64>()
        let half = serving.model.configuration.rawVectors == .float16
        for answer in found {
            for (position, id) in answer.ids.enumerated() {
                present.insert(id)
                guard let row = rowOf[id] else { continue }
                // Without stored vectors a stored id cannot be told from the same row: a conflict.
                guard answer.vectors.count == answer.ids.count * d else {
                    conflicting.insert(id)
                    continue
                }
                let stored = answer.vectors[position * d ..< (position + 1) * d]
                let incoming = prepared.values[row * d ..< (row + 1) * d]
                let same = half ? zip(stored, incoming).allSatisfy { $0 == Float(Float16($1)) } : stored.elementsEqual(incoming)
                if !same { conflicting.insert(id) }
            }
        }
        guard !conflicting.isEmpty else { return present.count }
        let shown = conflicting.sorted().prefix(5).map(String.init).joined(separator: ", ")
        switch policy {
        case .reject:
            throw .alreadyExists("\(conflicting.count) ids of the batch are already stored with other vectors (\(shown)\(conflicting.count > 5 ? ", …" : "")); send other ids, or on_duplicate_id REPLACE to overwrite them")
        case .replace:
            var request = Quiver_V1_DeleteRequest()
            request.collection = serving.name
            request.ids = WireArrays.pack(conflicting.sorted())
            _ = try await delete(request)
            return present.count - conflicting.count
        }
    }
}
