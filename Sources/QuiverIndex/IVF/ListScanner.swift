import CQuiverKernels

/// Scans inverted lists for a batch of queries, list by list: the queries of the batch that probe
/// one list are scanned together by the multi-query FastScan kernel, which loads each block's codes
/// once for several queries, each query into its own heap. A heap keeps the best entries in
/// (distance, tie key) order whatever the order of its offers, so a batch finds exactly what one
/// query at a time finds. Per-thread scratch (tables, LUTs, heaps) is reused across batches.
struct ListScanner: ~Copyable {
    private let index: IVFIndex
    private let isa = quiver_best_isa()
    /// Queries per batch.
    let batchCapacity: Int
    /// One candidate heap per query of the batch.
    let heaps: TopKArray
    private let lutBytes: Int
    private var table: [Float]
    /// Inner product: one LUT per query of the batch. L2: one per query of the list being scanned.
    /// Owned memory, so that the kernel's LUT pointers stay valid while later LUTs are written.
    private let luts: UnsafeMutablePointer<UInt8>
    private var queryScales: [Float]
    private var queryBiases: [Float]
    private var residual: [Float]
    /// list << 32 | position of every probe of the batch (position q · nprobe + j names query q),
    /// sorted so that each list's queries are adjacent.
    private var probesByList: [UInt64] = []
    /// Runs of `probesByList` with one list each, in scanning order.
    private var groups: [(rank: Int, start: Int, end: Int)] = []
    private var groupLUTs: [UnsafePointer<UInt8>?]
    private var groupScales: [Float]
    private var groupBiases: [Float]
    private var groupHeaps: [UnsafeMutablePointer<quiver_topk>?]

    init(index: IVFIndex, batchCapacity: Int, candidates: Int, dedupe: Bool, tieKeys: UnsafePointer<Int64>?) {
        self.index = index
        self.batchCapacity = batchCapacity
        heaps = TopKArray(count: batchCapacity, capacity: candidates, dedupe: dedupe, tieKeys: tieKeys)
        let quantizer = index.model.quantizer
        let configuration = index.configuration
        lutBytes = configuration.paddedSubspaces * 16
        table = [Float](repeating: 0, count: (quantizer?.subspaces ?? 0) * (quantizer?.centersPerSubspace ?? 0))
        let fastScan = configuration.encoding == .fastScan
        luts = .allocate(capacity: fastScan ? batchCapacity * lutBytes : 0)
        queryScales = [Float](repeating: 1, count: batchCapacity)
        queryBiases = [Float](repeating: 0, count: batchCapacity)
        residual = [Float](repeating: 0, count: index.model.dimension)
        groupLUTs = [UnsafePointer<UInt8>?](repeating: nil, count: batchCapacity)
        groupScales = [Float](repeating: 1, count: batchCapacity)
        groupBiases = [Float](repeating: 0, count: batchCapacity)
        groupHeaps = [UnsafeMutablePointer<quiver_topk>?](repeating: nil, count: batchCapacity)
    }

    deinit { luts.deallocate() }

    /// Fills heap q (q < count) with the best candidates (stored rows) of the lists query q
    /// probes: `lists[q * nprobe ..< (q + 1) * nprobe]` (−1 entries skipped; a query names each
    /// list at most once, as probing and the workers' request checks ensure). `coarse`, when given, holds each probe's coarse distance (−⟨q, c⟩ for
    /// inner product) in the same layout.
    mutating func scan(queries: UnsafePointer<Float>, count: Int, lists: UnsafeBufferPointer<Int32>, nprobe: Int,
                       coarse: UnsafeBufferPointer<Float>?) {
        precondition(count <= batchCapacity && lists.count == count * nprobe)
        let model = index.model
        let configuration = model.configuration
        let d = model.dimension
        let innerProduct = configuration.metric.usesInnerProduct
        let fastScan = configuration.encoding == .fastScan
        for q in 0 ..< count { heaps.reset(q) }
        // For inner product one LUT per query serves every list: ⟨q, c + r⟩ = ⟨q, c⟩ + ⟨q, r⟩.
        if innerProduct, fastScan, let quantizer = model.quantizer {
            for q in 0 ..< count {
                (queryScales[q], queryBiases[q]) = buildLUT(quantizer: quantizer, query: queries + q * d, centroid: nil, slot: q)
            }
        }
        probesByList.removeAll(keepingCapacity: true)
        for position in 0 ..< count * nprobe where lists[position] >= 0 {
            probesByList.append(UInt64(UInt32(lists[position])) << 32 | UInt64(position))
        }
        // A batch groups its probes by list. Heaps tighten fastest when good candidates come
        // first, so the lists go in order of the best rank any member query gave them: every
        // query meets its nearest lists early, as one query alone (kept nearest first) does.
        groups.removeAll(keepingCapacity: true)
        if count > 1 {
            probesByList.sort()
            var start = 0
            while start < probesByList.count {
                var end = start + 1
                var bestRank = Int(UInt32(truncatingIfNeeded: probesByList[start])) % nprobe
                while end < probesByList.count && probesByList[end] >> 32 == probesByList[start] >> 32 {
                    bestRank = min(bestRank, Int(UInt32(truncatingIfNeeded: probesByList[end])) % nprobe)
                    end += 1
                }
                groups.append((bestRank, start, end))
                start = end
            }
            groups.sort { ($0.rank, $0.start) < ($1.rank, $1.start) }
        } else {
            for position in probesByList.indices { groups.append((position, position, position + 1)) }
        }

        model.centroids.values.withUnsafeBufferPointer { centroids in
            for (_, start, end) in groups {
                let listID = Int(probesByList[start] >> 32)
                let list = index.lists[listID]
                guard list.count > 0 else { continue }
                let centroid = centroids.baseAddress! + listID * d
                var members = 0
                var previous = -1
                for pair in start ..< end {
                    let position = Int(UInt32(truncatingIfNeeded: probesByList[pair]))
                    let q = position / nprobe
                    // The kernel needs distinct heaps: a list named twice by one query counts once.
                    if q == previous { continue }
                    previous = q
                    let query = queries + q * d
                    if fastScan {
                        if innerProduct {
                            groupLUTs[members] = UnsafePointer(luts + q * lutBytes)
                            groupScales[members] = queryScales[q]
                            groupBiases[members] = queryBiases[q] + (coarse.map { $0[position] } ?? Self.coarseDistance(query, centroid, d))
                        } else {
                            (groupScales[members], groupBiases[members]) = buildLUT(quantizer: model.quantizer!, query: query,
                                                                                   centroid: centroid, slot: members)
                            groupLUTs[members] = UnsafePointer(luts + members * lutBytes)
                        }
                        groupHeaps[members] = heaps.heap(q)
                        members += 1
                    } else if configuration.encoding == .pq8 {
                        let bias = innerProduct ? (coarse.map { $0[position] } ?? Self.coarseDistance(query, centroid, d)) : 0
                        scanCodes(list, query: query, centroid: innerProduct ? nil : centroid, bias: bias, heap: q)
                    } else {
                        scanVectors(list, query: query, innerProduct: innerProduct, heap: q)
                    }
                }
                guard members > 0 else { continue }
                list.codes.withUnsafeBufferPointer { codes in
                    list.rows.withUnsafeBufferPointer { rows in
                        groupLUTs.withUnsafeBufferPointer { groupLUTs in
                            quiver_fastscan_scan_multi(isa, codes.baseAddress!, list.count, configuration.paddedSubspaces, members,
                                                       groupLUTs.baseAddress!, groupScales, groupBiases, rows.baseAddress!,
                                                       groupHeaps)
                        }
                    }
                }
            }
        }
    }

    /// −⟨q, c⟩ computed as the batched probe computes it (the same GEMM kernel gives the same bits
    /// for any blocking), so a scan without the coordinator's coarse scores finds what it would with them.
    private static func coarseDistance(_ query: UnsafePointer<Float>, _ centroid: UnsafePointer<Float>, _ d: Int) -> Float {
        var product: Float = 0
        Kernels.innerProducts(query, rows: 1, centroid, rows: 1, dimension: d, into: &product)
        return -product
    }

    /// Builds the FastScan LUT of `query` (of its residual against `centroid` for L2) into LUT
    /// slot `slot`. Returns (scale, bias).
    private mutating func buildLUT(quantizer: ProductQuantizer, query: UnsafePointer<Float>,
                                   centroid: UnsafePointer<Float>?, slot: Int) -> (Float, Float) {
        let paddedSubspaces = index.configuration.paddedSubspaces
        let lutBytes = lutBytes
        return table.withUnsafeMutableBufferPointer { table in
            if let centroid {
                residual.withUnsafeMutableBufferPointer { residual in
                    for j in 0 ..< quantizer.dimension { residual[j] = query[j] - centroid[j] }
                    quantizer.fastScanTable(residual.baseAddress!, l2: true, into: table.baseAddress!)
                }
            } else {
                quantizer.fastScanTable(query, l2: false, into: table.baseAddress!)
            }
            return quantizeLUT(table.baseAddress!, subspaces: quantizer.subspaces, paddedSubspaces: paddedSubspaces,
                               into: luts + slot * lutBytes)
        }
    }

    /// 8-bit ADC: distance = bias + Σ_s table[s][code_s], the table of `query` (of its residual
    /// against `centroid` for L2), negated for inner product so that lower is better.
    private mutating func scanCodes(_ list: InvertedList, query: UnsafePointer<Float>, centroid: UnsafePointer<Float>?,
                                    bias: Float, heap: Int) {
        let quantizer = index.model.quantizer!
        let m = quantizer.subspaces
        table.withUnsafeMutableBufferPointer { table in
            if let centroid {
                residual.withUnsafeMutableBufferPointer { residual in
                    for j in 0 ..< quantizer.dimension { residual[j] = query[j] - centroid[j] }
                    quantizer.l2Table(residual.baseAddress!, into: table.baseAddress!)
                }
            } else {
                quantizer.innerProductTable(query, into: table.baseAddress!)
                for i in 0 ..< table.count { table[i] = -table[i] }
            }
            list.codes.withUnsafeBufferPointer { codes in
                for entry in 0 ..< list.count {
                    let code = codes.baseAddress! + entry * m
                    var distance = bias
                    for s in 0 ..< m { distance += table[s << 8 + Int(code[s])] }
                    if distance <= heaps.threshold(heap) { heaps.push(heap, distance: distance, id: Int64(list.rows[entry])) }
                }
            }
        }
    }

    private func scanVectors(_ list: InvertedList, query: UnsafePointer<Float>, innerProduct: Bool, heap: Int) {
        let d = index.model.dimension
        list.vectors.withUnsafeBufferPointer { vectors in
            for entry in 0 ..< list.count {
                let x = vectors.baseAddress! + entry * d
                let distance = innerProduct ? -quiver_dot(query, x, d) : quiver_l2_squared(query, x, d)
                if distance <= heaps.threshold(heap) { heaps.push(heap, distance: distance, id: Int64(list.rows[entry])) }
            }
        }
    }

    /// Writes the candidates in heap `q` by estimated distance with their exact distances (rows in
    /// `ids`, padding −1 / +∞ up to `slots`), emptying the heap.
    func exactCandidates(_ q: Int, query: UnsafePointer<Float>, ids: UnsafeMutablePointer<Int64>,
                         estimates: UnsafeMutablePointer<Float>, exact: UnsafeMutablePointer<Float>, slots: Int) {
        heaps.drainSorted(q, into: estimates, ids, slots: slots)
        index.rawVectors.distances(query: query, rows: ids, count: slots, metric: index.configuration.metric, into: exact)
    }

    /// Re-scores the candidates in heap `q` exactly with raw vectors into `best` (emptying the
    /// heap); `rows` and `distances` are scratch of the heap's capacity.
    func rerank(_ q: Int, query: UnsafePointer<Float>, into best: inout TopK,
                rows: UnsafeMutablePointer<Int64>, distances: UnsafeMutablePointer<Float>) {
        best.reset()
        let held = heaps.drain(q, into: rows)
        index.rawVectors.distances(query: query, rows: rows, count: held, metric: index.configuration.metric, into: distances)
        for i in 0 ..< held { best.push(distance: distances[i], id: rows[i]) }
    }
}
