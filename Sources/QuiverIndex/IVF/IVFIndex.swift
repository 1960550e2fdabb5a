import CQuiverKernels

/// Inverted lists built on an `IVFModel`: the whole collection in one process, or the subset of
/// lists one shard worker owns. Adding assigns (or takes the given) lists and encodes residuals;
/// searching visits the probed lists with the encoding's scanner, keeps a per-query top-k and
/// optionally re-ranks the best `reorderK` candidates with raw vectors.
public struct IVFIndex: Sendable {
    public let model: IVFModel
    public internal(set) var lists: [InvertedList]
    /// External id of each stored row.
    public internal(set) var externalIDs: [Int64]
    public internal(set) var rawVectors: RawVectorStore
    /// Row by id and lists by row, when rows are changed by id (`enableRowLookup`).
    public internal(set) var rowLookup: RowLookup?

    public init(model: IVFModel) {
        self.model = model
        lists = Array(repeating: InvertedList(), count: model.nlist)
        externalIDs = []
        rawVectors = RawVectorStore(precision: model.configuration.rawVectors, dimension: model.dimension)
    }

    /// Reassembles an index from stored parts (index files, worker segments).
    public init(model: IVFModel, lists: [InvertedList], externalIDs: [Int64], rawVectors: RawVectorStore) {
        precondition(lists.count == model.nlist)
        self.model = model
        self.lists = lists
        self.externalIDs = externalIDs
        self.rawVectors = rawVectors
    }

    /// Queries a FastScan search scans together, list by list (fewer for small searches, so
    /// that every thread gets work, and for deep re-ranks, so that the batch's heaps stay within
    /// a few MB). Results do not depend on it. On pkgdesc (1 thread, nprobe 10–20) batches of
    /// 64–1,024 queries answer 10–25% more queries per CPU-second than one query at a time.
    static let defaultQueriesPerScan = 256

    /// Rows one index can hold: list entries name their row in 32 bits.
    public static let maxRows = Int(UInt32.max)

    public var configuration: IVFConfiguration { model.configuration }
    /// Stored vectors (a spilled vector counts once).
    public var count: Int { externalIDs.count }
    /// List entries, spilled copies included.
    public var entryCount: Int { lists.reduce(0) { $0 + $1.count } }

    /// Bytes held by codes, list row ids, external ids, raw vectors and the row lookup.
    public var memoryBytes: Int {
        lists.reduce(0) { $0 + $1.memoryBytes } + externalIDs.count * 8 + rawVectors.memoryBytes + (rowLookup?.memoryBytes ?? 0)
    }

    // MARK: - Adding

    /// Adds raw vectors (normalised here for cosine), assigning lists with the model.
    /// - Parameter ids: external ids; nil numbers rows from the current count.
    public mutating func add(_ vectors: Matrix, ids: [Int64]? = nil, threads: Int = 1) throws(IndexError) {
        guard vectors.dimension == model.dimension else {
            throw .dimensionMismatch(expected: model.dimension, got: vectors.dimension)
        }
        try Self.checkFinite(vectors)
        var prepared = vectors
        model.prepare(&prepared)
        let assignment = model.assign(prepared, threads: threads)
        try add(prepared: prepared, ids: ids, assignment: assignment, threads: threads)
    }

    /// Adds prepared vectors to the lists in `assignment` (a shard worker gets these from the
    /// coordinator). Lists this index holds no entries for simply grow.
    public mutating func add(prepared vectors: Matrix, ids: [Int64]?, assignment: IVFModel.Assignment,
                             threads: Int = 1) throws(IndexError) {
        let ids = ids ?? (0 ..< vectors.rows).map { Int64(externalIDs.count + $0) }
        try append(encode(prepared: vectors, ids: ids, assignment: assignment, threads: threads))
    }

    /// Encodes prepared vectors for their lists without changing the index: what a worker makes
    /// durable before it appends and acknowledges.
    public func encode(prepared vectors: Matrix, ids: [Int64], assignment: IVFModel.Assignment,
                       threads: Int = 1) throws(IndexError) -> EncodedBatch {
        guard vectors.dimension == model.dimension else {
            throw .dimensionMismatch(expected: model.dimension, got: vectors.dimension)
        }
        let n = vectors.rows
        guard ids.count == n else { throw .invalidParameter("\(ids.count) ids for \(n) vectors") }
        guard assignment.primary.count == n, assignment.spill.count == n else {
            throw .invalidParameter("list assignment covers \(assignment.primary.count) rows, expected \(n)")
        }
        for list in assignment.primary where list < 0 || list >= model.nlist {
            throw .invalidParameter("list \(list) does not exist (nlist \(model.nlist))")
        }
        for list in assignment.spill where list < -1 || list >= model.nlist {
            throw .invalidParameter("spill list \(list) does not exist (nlist \(model.nlist))")
        }
        let config = model.configuration
        if config.rawVectors == .float16 { try RawVectorStore.checkHalfRange(vectors) }
        let width = EncodedBatch.codeWidth(config)
        let d = model.dimension
        let spilling = assignment.spill.contains { $0 >= 0 }
        var primaryCodes = [UInt8](repeating: 0, count: n * width)
        var spillCodes = [UInt8](repeating: 0, count: spilling ? n * width : 0)
        if width > 0 {
            vectors.values.withUnsafeBufferPointer { values in
                primaryCodes.withUnsafeMutableBufferPointer { primaryOut in
                    spillCodes.withUnsafeMutableBufferPointer { spillOut in
                        parallelFor(count: n, threads: threads, chunk: 256) { range, _ in
                            var encoder = ResidualEncoder(model: model)
                            for row in range {
                                let x = values.baseAddress! + row * d
                                encoder.setRow(x)
                                encoder.encode(x, list: Int(assignment.primary[row]), into: primaryOut.baseAddress! + row * width)
                                let spill = Int(assignment.spill[row])
                                if spill >= 0 {
                                    encoder.encode(x, list: spill, into: spillOut.baseAddress! + row * width)
                                }
                            }
                        }
                    }
                }
            }
        }
        let keepVectors = config.encoding == .flat || config.rawVectors != .none
        return EncodedBatch(ids: ids, primary: assignment.primary, spill: spilling ? assignment.spill : [],
                            primaryCodes: primaryCodes, spillCodes: spillCodes,
                            vectors: keepVectors ? vectors.values : [])
    }

    /// Appends an encoded batch (from `encode`, or replayed from a worker's segments).
    public mutating func append(_ batch: EncodedBatch) throws(IndexError) {
        let config = model.configuration
        let d = model.dimension
        let width = EncodedBatch.codeWidth(config)
        try batch.validate(for: model)
        let n = batch.count
        let firstRow = externalIDs.count
        guard n <= Self.maxRows - firstRow else {
            throw .invalidParameter("an index holds at most \(Self.maxRows) rows; it has \(firstRow), the batch adds \(n)")
        }
        var perList = [Int](repeating: 0, count: model.nlist)
        for list in batch.primary { perList[Int(list)] += 1 }
        for list in batch.spill where list >= 0 { perList[Int(list)] += 1 }
        for (list, additional) in perList.enumerated() where additional > 0 {
            lists[list].reserve(additional: additional, bytesPerEntry: width, floatsPerEntry: config.encoding == .flat ? d : 0)
        }
        batch.vectors.withUnsafeBufferPointer { values in
            batch.primaryCodes.withUnsafeBufferPointer { primaryCodes in
                batch.spillCodes.withUnsafeBufferPointer { spillCodes in
                    for row in 0 ..< n {
                        let stored = UInt32(firstRow + row)
                        appendEntry(row: stored, list: Int(batch.primary[row]), codes: primaryCodes.baseAddress.map { $0 + row * width },
                                    vector: values.baseAddress.map { $0 + row * d })
                        if !batch.spill.isEmpty, batch.spill[row] >= 0 {
                            appendEntry(row: stored, list: Int(batch.spill[row]), codes: spillCodes.baseAddress.map { $0 + row * width },
                                        vector: values.baseAddress.map { $0 + row * d })
                        }
                    }
                }
            }
            if rawVectors.precision != .none { rawVectors.append(values.baseAddress!, count: n) }
        }
        externalIDs.append(contentsOf: batch.ids)
        if rowLookup != nil {
            for row in 0 ..< n {
                let stored = UInt32(firstRow + row)
                trackEntry(list: batch.primary[row], row: stored, id: batch.ids[row])
                if !batch.spill.isEmpty, batch.spill[row] >= 0 { trackEntry(list: batch.spill[row], row: stored, id: batch.ids[row]) }
            }
        }
    }

    private mutating func appendEntry(row: UInt32, list: Int, codes: UnsafePointer<UInt8>?, vector: UnsafePointer<Float>?) {
        let config = model.configuration
        switch config.encoding {
        case .fastScan: lists[list].appendFastScan(row: row, entryCodes: codes!, paddedSubspaces: config.paddedSubspaces)
        case .pq8: lists[list].appendCodes(row: row, entryCodes: codes!, subspaces: config.subspaces)
        case .flat: lists[list].appendVector(row: row, vector: vector!, dimension: model.dimension)
        }
    }

    static func checkFinite(_ vectors: Matrix) throws(IndexError) {
        guard let bad = Kernels.firstNonFinite(vectors.values) else { return }
        throw .invalidVector(row: bad / vectors.dimension, column: bad % vectors.dimension, value: vectors.values[bad])
    }

    // MARK: - Searching

    /// Searches raw queries (normalised here for cosine) on up to `threads` threads.
    public func search(_ queries: Matrix, parameters: SearchParameters, threads: Int = 1) throws(IndexError) -> SearchResults {
        guard queries.dimension == model.dimension else {
            throw .dimensionMismatch(expected: model.dimension, got: queries.dimension)
        }
        try Self.checkFinite(queries)
        try validate(parameters)
        var prepared = queries
        model.prepare(&prepared)
        let nprobe = min(parameters.nprobe, model.nlist)
        return prepared.values.withUnsafeBufferPointer { q in
            let probes = model.probeWithDistances(q.baseAddress!, count: prepared.rows, nprobe: nprobe, threads: threads)
            return search(prepared: q.baseAddress!, count: prepared.rows, probes: probes.lists, nprobe: nprobe,
                          parameters: parameters, threads: threads, coarseDistances: probes.distances)
        }
    }

    public func validate(_ parameters: SearchParameters) throws(IndexError) {
        guard parameters.k > 0 else { throw .invalidParameter("k must be positive, got \(parameters.k)") }
        guard parameters.k <= 100_000 else { throw .invalidParameter("k must be at most 100000, got \(parameters.k)") }
        guard parameters.nprobe > 0 else { throw .invalidParameter("nprobe must be positive, got \(parameters.nprobe)") }
        guard parameters.nprobe <= model.nlist else {
            throw .invalidParameter("nprobe \(parameters.nprobe) exceeds the number of lists (\(model.nlist))")
        }
        guard parameters.reorderK >= 0, parameters.reorderK <= 100_000 else {
            throw .invalidParameter("reorderK must be between 0 and 100000, got \(parameters.reorderK)")
        }
    }

    /// Scans the given lists (`count × nprobe`, −1 entries skipped) for prepared queries.
    /// `coarseDistances` (same shape as `probes`, from `IVFModel.probeWithDistances`) saves
    /// recomputing each list's offset.
    public func search(prepared queries: UnsafePointer<Float>, count: Int, probes: [Int32], nprobe: Int,
                       parameters: SearchParameters, threads: Int = 1, coarseDistances: [Float]? = nil) -> SearchResults {
        scan(prepared: queries, count: count, probes: probes, nprobe: nprobe, parameters: parameters,
             threads: threads, coarseDistances: coarseDistances, candidatesOnly: false)
    }

    /// What a shard worker answers when re-ranking is asked for: the best `max(k, reorderK)`
    /// candidates of its lists by estimated distance, each with its exact distance
    /// (`exactDistances`), so that the coordinator can merge shards with
    /// `SearchResults.mergeCandidates` into exactly what one index would return. Without raw
    /// vectors or re-ranking this is the plain search.
    public func candidates(prepared queries: UnsafePointer<Float>, count: Int, probes: [Int32], nprobe: Int,
                           parameters: SearchParameters, threads: Int = 1, coarseDistances: [Float]? = nil) -> SearchResults {
        scan(prepared: queries, count: count, probes: probes, nprobe: nprobe, parameters: parameters,
             threads: threads, coarseDistances: coarseDistances, candidatesOnly: true)
    }

    /// Whether `parameters` re-rank on this index (raw vectors kept, codes approximate).
    public func reranks(_ parameters: SearchParameters) -> Bool {
        parameters.reorderK > 0 && rawVectors.precision != .none && model.configuration.encoding != .flat
    }

    func scan(prepared queries: UnsafePointer<Float>, count: Int, probes: [Int32], nprobe: Int,
              parameters: SearchParameters, threads: Int, coarseDistances: [Float]?,
              candidatesOnly: Bool, queriesPerScan: Int = IVFIndex.defaultQueriesPerScan) -> SearchResults {
        precondition(probes.count == count * nprobe)
        precondition(coarseDistances == nil || coarseDistances!.count == probes.count)
        let k = parameters.k
        let reranking = reranks(parameters)
        let candidateCount = reranking ? max(k, parameters.reorderK) : k
        let slots = candidatesOnly ? candidateCount : k
        var results = SearchResults(queryCount: count, k: slots)
        if candidatesOnly && reranking {
            results.exactDistances = [Float](repeating: .infinity, count: count * slots)
        }
        // FastScan batches scan each list once for all the batch's queries that probe it.
        let heapBudget = (1 << 20) / (candidateCount * 64)
        let batch = configuration.encoding == .fastScan
            ? max(1, min(queriesPerScan, heapBudget, (count + threads - 1) / max(1, threads))) : 1
        results.ids.withUnsafeMutableBufferPointer { outIds in
            results.distances.withUnsafeMutableBufferPointer { outDistances in
                results.exactDistances.withUnsafeMutableBufferPointer { outExact in
                    externalIDs.withUnsafeBufferPointer { externalIDs in
                        probes.withUnsafeBufferPointer { probes in
                            (coarseDistances ?? []).withUnsafeBufferPointer { coarse in
                                let shared = UncheckedSendable((outIds.baseAddress!, outDistances.baseAddress!, outExact.baseAddress,
                                                                externalIDs.baseAddress, probes, coarseDistances == nil ? nil : coarse))
                                parallelFor(count: count, threads: threads, chunk: batch) { range, _ in
                                    let (ids, distances, exact, external, probes, coarse) = shared.value
                                    // Heaps hold rows; equal distances rank by external id, as shards merge.
                                    var scanner = ListScanner(index: self, batchCapacity: batch, candidates: candidateCount,
                                                              dedupe: model.isSpilling, tieKeys: external)
                                    var best = TopK(capacity: k, tieKeys: external)
                                    let rows = UnsafeMutablePointer<Int64>.allocate(capacity: candidateCount)
                                    let exactScratch = UnsafeMutablePointer<Float>.allocate(capacity: candidateCount)
                                    defer {
                                        rows.deallocate()
                                        exactScratch.deallocate()
                                    }
                                    let first = range.lowerBound
                                    let span = range.lowerBound * nprobe ..< range.upperBound * nprobe
                                    scanner.scan(queries: queries + first * model.dimension, count: range.count,
                                                 lists: UnsafeBufferPointer(rebasing: probes[span]), nprobe: nprobe,
                                                 coarse: coarse.map { UnsafeBufferPointer(rebasing: $0[span]) })
                                    for query in range {
                                        let q = queries + query * model.dimension
                                        let local = query - first
                                        let base = query * slots
                                        if reranking && candidatesOnly {
                                            scanner.exactCandidates(local, query: q, ids: ids + base, estimates: distances + base,
                                                                    exact: exact! + base, slots: slots)
                                        } else if reranking {
                                            scanner.rerank(local, query: q, into: &best, rows: rows, distances: exactScratch)
                                            best.drainSorted(into: distances + base, ids + base, slots: slots)
                                        } else {
                                            scanner.heaps.drainSorted(local, into: distances + base, ids + base, slots: slots)
                                        }
                                        // Rows → external ids.
                                        for i in base ..< base + slots where ids[i] >= 0 {
                                            ids[i] = external![Int(ids[i])]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return results
    }
}
