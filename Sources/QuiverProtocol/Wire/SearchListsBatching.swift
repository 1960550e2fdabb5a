import Foundation

/// Several small `SearchLists` requests for one worker travel as one call and their answer is
/// split back: the coordinator merges concurrent single-query searches this way, so the
/// per-call cost (two gRPC ends, framing, thread wake-ups) is paid once per batch, not per query.
extension Quiver_V1_SearchListsRequest {
    /// Whether `other` can share a call with this request: same collection, versions, k,
    /// re-ranking depth and dimension, and both with or both without coarse scores.
    public func canShareCall(with other: Self) -> Bool {
        collection == other.collection && modelVersion == other.modelVersion && shardMapVersion == other.shardMapVersion
            && k == other.k && reorderK == other.reorderK && queries.dimension == other.queries.dimension
            && probeCoarseScores.isEmpty == other.probeCoarseScores.isEmpty
    }

    /// One request carrying every part's queries in order (part 0's rows first). The parts must
    /// share a call (`canShareCall`) and each be well formed.
    public static func combining(_ parts: [Self]) throws(WireFormatError) -> Self {
        guard var combined = parts.first else { throw WireFormatError("combining: no requests") }
        guard parts.count > 1 else { return combined }
        var offsets: [UInt32] = [0]
        var rows = 0
        var queryBytes = Data()
        var listBytes = Data()
        var coarseBytes = Data()
        for (index, part) in parts.enumerated() {
            guard part.canShareCall(with: combined) else {
                throw WireFormatError("combining: request \(index) differs in collection, versions, k, reorder_k or dimension")
            }
            let partRows = Int(part.queries.rows)
            let partOffsets = try WireArrays.unpack(part.probeOffsets, as: UInt32.self, count: partRows + 1,
                                                    field: "request \(index) probe_offsets")
            let base = offsets[offsets.count - 1]
            offsets += partOffsets.dropFirst().map { base + $0 - partOffsets[0] }
            rows += partRows
            queryBytes.append(part.queries.data)
            listBytes.append(part.probeListIds)
            coarseBytes.append(part.probeCoarseScores)
        }
        combined.queries.rows = UInt32(rows)
        combined.queries.data = queryBytes
        combined.probeOffsets = WireArrays.pack(offsets)
        combined.probeListIds = listBytes
        combined.probeCoarseScores = coarseBytes
        return combined
    }
}

extension Quiver_V1_SearchListsResponse {
    /// Splits the answer to a combined request into one answer per part, `queryCounts[i]` rows
    /// each, in order. `codes_scanned` is a whole-call figure and is left at 0 in the parts.
    public func splitting(queryCounts: [Int]) throws(WireFormatError) -> [Self] {
        let total = queryCounts.reduce(0, +)
        guard Int(results.queryCount) == total else {
            throw WireFormatError("splitting: the answer has \(results.queryCount) query rows, the parts \(total)")
        }
        let slots = Int(results.k)
        guard results.ids.count == total * slots * 8, results.scores.count == total * slots * 4 else {
            throw WireFormatError("splitting: results hold \(results.ids.count) id bytes and \(results.scores.count) score bytes for \(total) × \(slots) slots")
        }
        guard exactScores.isEmpty || exactScores.count == total * slots * 4 else {
            throw WireFormatError("splitting: exact_scores holds \(exactScores.count) bytes for \(total) × \(slots) slots")
        }
        guard listsScanned.isEmpty || listsScanned.count == total * 4 else {
            throw WireFormatError("splitting: lists_scanned holds \(listsScanned.count) bytes for \(total) queries")
        }
        let skippedOffsets = skippedOffsets.isEmpty && skippedListIds.isEmpty
            ? [] : try WireArrays.unpack(self.skippedOffsets, as: UInt32.self, count: total + 1, field: "skipped_offsets")
        if let last = skippedOffsets.last {
            guard skippedOffsets[0] == 0, zip(skippedOffsets, skippedOffsets.dropFirst()).allSatisfy({ $0 <= $1 }),
                  Int(last) * 4 == skippedListIds.count else {
                throw WireFormatError("splitting: skipped_offsets must rise from 0 to the \(skippedListIds.count / 4) skipped_list_ids")
            }
        }
        func bytes(_ data: Data, rows: Range<Int>, width: Int) -> Data {
            let start = data.startIndex
            return data.subdata(in: start + rows.lowerBound * width ..< start + rows.upperBound * width)
        }
        var parts: [Self] = []
        parts.reserveCapacity(queryCounts.count)
        var first = 0
        for count in queryCounts {
            let rows = first ..< first + count
            var part = Self()
            part.results.queryCount = UInt32(count)
            part.results.k = results.k
            part.results.ids = bytes(results.ids, rows: rows, width: slots * 8)
            part.results.scores = bytes(results.scores, rows: rows, width: slots * 4)
            if !exactScores.isEmpty { part.exactScores = bytes(exactScores, rows: rows, width: slots * 4) }
            if !listsScanned.isEmpty { part.listsScanned = bytes(listsScanned, rows: rows, width: 4) }
            if !skippedOffsets.isEmpty {
                let base = skippedOffsets[rows.lowerBound]
                let partOffsets = skippedOffsets[rows.lowerBound ... rows.upperBound].map { $0 - base }
                if partOffsets.last! > 0 {
                    part.skippedOffsets = WireArrays.pack(partOffsets)
                    part.skippedListIds = bytes(skippedListIds, rows: Int(base) ..< Int(skippedOffsets[rows.upperBound]), width: 4)
                }
            }
            parts.append(part)
            first += count
        }
        return parts
    }
}
