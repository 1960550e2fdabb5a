import CQuiverKernels

/// Scans inverted lists for one query at a time with the encoding's scoring method, collecting
/// candidates in one heap; per-thread scratch (tables, LUT, heap) is reused across queries.
struct ListScanner: ~Copyable {
    private let index: IVFIndex
    private let isa = quiver_best_isa()
    var heap: TopK
    private var table: [Float]
    private var lut: [UInt8]
    private var residual: [Float]

    init(index: IVFIndex, candidates: Int, dedupe: Bool, tieKeys: UnsafePointer<Int64>?) {
        self.index = index
        heap = TopK(capacity: candidates, dedupe: dedupe, tieKeys: tieKeys)
        let quantizer = index.model.quantizer
        table = [Float](repeating: 0, count: (quantizer?.subspaces ?? 0) * (quantizer?.centersPerSubspace ?? 0))
        lut = [UInt8](repeating: 0, count: index.configuration.paddedSubspaces * 16)
        residual = [Float](repeating: 0, count: index.model.dimension)
    }

    /// Fills `heap` with the best candidates (stored rows) of `lists` for prepared query `query`.
    /// `coarse`, when given, holds each list's coarse distance (−⟨q, c⟩ for inner product).
    mutating func scan(query: UnsafePointer<Float>, lists: ArraySlice<Int32>, coarse: ArraySlice<Float>?) {
        heap.reset()
        let model = index.model
        let configuration = model.configuration
        let d = model.dimension
        let innerProduct = configuration.metric.usesInnerProduct
        var lutScale: Float = 1
        var lutBias: Float = 0
        // For inner product one table serves every list: ⟨q, c + r⟩ = ⟨q, c⟩ + ⟨q, r⟩.
        if innerProduct, let quantizer = model.quantizer {
            (lutScale, lutBias) = buildTable(quantizer: quantizer, query: query, residualAgainst: nil)
        }
        model.centroids.values.withUnsafeBufferPointer { centroids in
            for (position, listID) in zip(lists.indices, lists) where listID >= 0 {
                let list = index.lists[Int(listID)]
                guard list.count > 0 else { continue }
                let centroid = centroids.baseAddress! + Int(listID) * d
                var bias = lutBias
                if innerProduct {
                    bias += coarse.map { $0[position] } ?? -quiver_dot(query, centroid, d)
                } else if let quantizer = model.quantizer {
                    (lutScale, bias) = buildTable(quantizer: quantizer, query: query, residualAgainst: centroid)
                }
                switch configuration.encoding {
                case .fastScan:
                    list.codes.withUnsafeBufferPointer { codes in
                        list.rows.withUnsafeBufferPointer { rows in
                            lut.withUnsafeBufferPointer { lut in
                                quiver_fastscan_scan(isa, codes.baseAddress!, list.count, configuration.paddedSubspaces,
                                                     lut.baseAddress!, lutScale, bias, rows.baseAddress!, &heap.heap)
                            }
                        }
                    }
                case .pq8:
                    scanCodes(list, bias: bias, subspaces: configuration.subspaces)
                case .flat:
                    scanVectors(list, query: query, innerProduct: innerProduct, dimension: d)
                }
            }
        }
    }

    /// Builds the distance table for `query` (against a list's centroid for L2), negated for inner
    /// product so that lower is better; for FastScan also its uint8 LUT. Returns (scale, bias).
    private mutating func buildTable(quantizer: ProductQuantizer, query: UnsafePointer<Float>,
                                     residualAgainst centroid: UnsafePointer<Float>?) -> (Float, Float) {
        let entries = quantizer.subspaces * quantizer.centersPerSubspace
        let fastScan = index.configuration.encoding == .fastScan
        let paddedSubspaces = index.configuration.paddedSubspaces
        return table.withUnsafeMutableBufferPointer { table in
            if fastScan {
                if let centroid {
                    residual.withUnsafeMutableBufferPointer { residual in
                        for j in 0 ..< quantizer.dimension { residual[j] = query[j] - centroid[j] }
                        quantizer.fastScanTable(residual.baseAddress!, l2: true, into: table.baseAddress!)
                    }
                } else {
                    quantizer.fastScanTable(query, l2: false, into: table.baseAddress!)
                }
            } else if let centroid {
                residual.withUnsafeMutableBufferPointer { residual in
                    for j in 0 ..< quantizer.dimension { residual[j] = query[j] - centroid[j] }
                    quantizer.l2Table(residual.baseAddress!, into: table.baseAddress!)
                }
                return (1, 0)
            } else {
                quantizer.innerProductTable(query, into: table.baseAddress!)
                for i in 0 ..< entries { table[i] = -table[i] }
                return (1, 0)
            }
            return lut.withUnsafeMutableBufferPointer { lut in
                quantizeLUT(table.baseAddress!, subspaces: quantizer.subspaces, paddedSubspaces: paddedSubspaces,
                            into: lut.baseAddress!)
            }
        }
    }

    /// 8-bit ADC: distance = bias + Σ_s table[s][code_s].
    private mutating func scanCodes(_ list: InvertedList, bias: Float, subspaces m: Int) {
        table.withUnsafeBufferPointer { table in
            list.codes.withUnsafeBufferPointer { codes in
                for entry in 0 ..< list.count {
                    let code = codes.baseAddress! + entry * m
                    var distance = bias
                    for s in 0 ..< m { distance += table[s << 8 + Int(code[s])] }
                    if distance <= heap.threshold { heap.push(distance: distance, id: Int64(list.rows[entry])) }
                }
            }
        }
    }

    private mutating func scanVectors(_ list: InvertedList, query: UnsafePointer<Float>, innerProduct: Bool, dimension d: Int) {
        list.vectors.withUnsafeBufferPointer { vectors in
            for entry in 0 ..< list.count {
                let x = vectors.baseAddress! + entry * d
                let distance = innerProduct ? -quiver_dot(query, x, d) : quiver_l2_squared(query, x, d)
                if distance <= heap.threshold { heap.push(distance: distance, id: Int64(list.rows[entry])) }
            }
        }
    }

    /// Writes the candidates in `heap` by estimated distance with their exact distances (rows in
    /// `ids`, padding −1 / +∞ up to `slots`), emptying `heap`.
    mutating func exactCandidates(query: UnsafePointer<Float>, ids: UnsafeMutablePointer<Int64>,
                                  estimates: UnsafeMutablePointer<Float>, exact: UnsafeMutablePointer<Float>, slots: Int) {
        let raw = index.rawVectors
        let metric = index.configuration.metric
        heap.drainSorted(into: estimates, ids, slots: slots)
        raw.floats.withUnsafeBufferPointer { floats in
            raw.halves.withUnsafeBufferPointer { halves in
                for slot in 0 ..< slots {
                    exact[slot] = ids[slot] >= 0
                        ? raw.distance(query: query, row: Int(ids[slot]), metric: metric, floats: floats, halves: halves) : .infinity
                }
            }
        }
    }

    /// Re-scores the candidates in `heap` exactly with raw vectors into `best` (emptying `heap`).
    mutating func rerank(query: UnsafePointer<Float>, into best: inout TopK) {
        let raw = index.rawVectors
        let metric = index.configuration.metric
        best.reset()
        raw.floats.withUnsafeBufferPointer { floats in
            raw.halves.withUnsafeBufferPointer { halves in
                for candidate in heap.drainSorted() {
                    let row = Int(candidate.id)
                    best.push(distance: raw.distance(query: query, row: row, metric: metric, floats: floats, halves: halves),
                              id: candidate.id)
                }
            }
        }
    }
}
