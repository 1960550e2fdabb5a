import GRPCCore
import QuiverIndex
import QuiverProtocol
import QuiverStorage

/// Deletes, id lookups and what repairs need: list copies out and in, list digests, compaction.
extension ShardWorker {
    /// Entries per chunk of a list copy: a chunk stays well below the message limit.
    static func exportChunkEntries(dimension: Int, codeWidth: Int) -> Int {
        max(1, (4 << 20) / (8 + codeWidth + dimension * 4))
    }

    public func deleteIDs(_ request: Quiver_V1_DeleteIDsRequest) throws(RPCError) -> Quiver_V1_DeleteIDsResponse {
        let collection = try collection(request.collection)
        try checkModelVersion(request.modelVersion, of: collection, rpc: "DeleteIDs")
        let ids = try unpack(request.ids, as: Int64.self, field: "ids")
        if let bad = ids.firstIndex(where: { $0 < 0 }) {
            throw .invalidArgument("DeleteIDs: ids[\(bad)] is \(ids[bad]); ids are non-negative")
        }
        let present = collection.read { index, _ in ids.filter { index.row(of: $0) != nil } }
        do throws(WorkerWriteError) {
            _ = try collection.delete(present)
        } catch {
            throw RPCError(error, collection: collection.name)
        }
        try compactIfWorthIt(collection)
        var response = Quiver_V1_DeleteIDsResponse()
        response.removed = UInt64(present.count)
        response.removedIds = WireArrays.pack(present)
        return response
    }

    public func lookupIDs(_ request: Quiver_V1_LookupIDsRequest) throws(RPCError) -> Quiver_V1_LookupIDsResponse {
        let collection = try collection(request.collection)
        try checkModelVersion(request.modelVersion, of: collection, rpc: "LookupIDs")
        let ids = try unpack(request.ids, as: Int64.self, field: "ids")
        let (found, vectors) = collection.read { index, _ -> ([Int64], [Float]) in
            var found: [Int64] = []
            var vectors: [Float] = []
            for id in ids where id >= 0 {
                guard let row = index.row(of: id) else { continue }
                found.append(id)
                vectors += index.storedVector(row: row)
            }
            return (found, vectors)
        }
        var response = Quiver_V1_LookupIDsResponse()
        response.foundIds = WireArrays.pack(found)
        response.vectors = WireArrays.pack(vectors)
        return response
    }

    /// The chunks of a list copy, in order.
    public func exportList(_ request: Quiver_V1_ExportListRequest) throws(RPCError) -> [Quiver_V1_ListChunk] {
        let collection = try collection(request.collection)
        try checkModelVersion(request.modelVersion, of: collection, rpc: "ExportList")
        guard collection.currentOwnership.owns(request.list) else {
            throw .failedPrecondition("ExportList: list \(request.list) of \"\(collection.name)\" is not owned by this worker")
        }
        let export = collection.read { index, _ in index.export(list: Int(request.list)) }
        let model = collection.model
        let width = EncodedBatch.codeWidth(model.configuration)
        let perChunk = Self.exportChunkEntries(dimension: model.dimension, codeWidth: width)
        let vectorWidth = export.count > 0 ? export.vectors.count / export.count : 0
        var chunks: [Quiver_V1_ListChunk] = []
        var start = 0
        repeat {
            let end = min(export.count, start + perChunk)
            var chunk = Quiver_V1_ListChunk()
            chunk.collection = collection.name
            chunk.modelVersion = model.version
            chunk.list = request.list
            chunk.totalEntries = UInt32(export.count)
            chunk.ids = WireArrays.pack(export.ids[start ..< end])
            chunk.codes = WireArrays.pack(export.codes[start * width ..< end * width])
            chunk.vectors = WireArrays.pack(export.vectors[start * vectorWidth ..< end * vectorWidth])
            chunks.append(chunk)
            start = end
        } while start < export.count
        return chunks
    }

    /// Replaces a list with the entries of `chunks` (one import stream), durably.
    public func importList(_ chunks: [Quiver_V1_ListChunk]) throws(RPCError) -> Quiver_V1_ImportListResponse {
        guard let first = chunks.first else { throw .invalidArgument("ImportList: the stream carried no chunks") }
        let collection = try collection(first.collection)
        try checkModelVersion(first.modelVersion, of: collection, rpc: "ImportList")
        let model = collection.model
        guard first.list >= 0, Int(first.list) < model.nlist else {
            throw .invalidArgument("ImportList: list \(first.list) is not a list of this model (nlist \(model.nlist))")
        }
        guard collection.currentOwnership.owns(first.list) else {
            throw .failedPrecondition("ImportList: list \(first.list) of \"\(collection.name)\" is not owned by this worker; send AssignLists first")
        }
        var export = ListExport(list: Int(first.list), ids: [], codes: [], vectors: [])
        for (position, chunk) in chunks.enumerated() {
            guard chunk.collection == first.collection, chunk.modelVersion == first.modelVersion, chunk.list == first.list,
                  chunk.totalEntries == first.totalEntries else {
                throw .invalidArgument("ImportList: chunk \(position) is for another list or model than the first")
            }
            export.ids += try unpack(chunk.ids, as: Int64.self, field: "ids")
            export.codes += Array(chunk.codes)
            export.vectors += try unpack(chunk.vectors, as: Float.self, field: "vectors")
        }
        guard export.count == Int(first.totalEntries) else {
            throw .invalidArgument("ImportList: the stream carried \(export.count) of \(first.totalEntries) entries")
        }
        if let bad = Kernels.firstNonFinite(export.vectors) {
            throw .invalidArgument("ImportList: vector value \(bad) is not finite")
        }
        do throws(WorkerWriteError) {
            try collection.replace(list: export)
        } catch {
            throw RPCError(error, collection: collection.name)
        }
        try compactIfWorthIt(collection)
        let digest = collection.read { index, _ in index.digest(of: export.list) }
        var response = Quiver_V1_ImportListResponse()
        response.entries = UInt32(digest.count)
        response.checksum = digest.checksum
        return response
    }

    public func listDigests(_ request: Quiver_V1_ListDigestsRequest) throws(RPCError) -> Quiver_V1_ListDigestsResponse {
        let collection = try collection(request.collection)
        try checkModelVersion(request.modelVersion, of: collection, rpc: "ListDigests")
        let (lists, counts, checksums) = collection.read { index, ownership -> ([Int32], [UInt32], [UInt64]) in
            var lists: [Int32] = []
            var counts: [UInt32] = []
            var checksums: [UInt64] = []
            for list in 0 ..< index.model.nlist where ownership.owns(Int32(list)) {
                let digest = index.digest(of: list)
                lists.append(Int32(list))
                counts.append(UInt32(digest.count))
                checksums.append(digest.checksum)
            }
            return (lists, counts, checksums)
        }
        var response = Quiver_V1_ListDigestsResponse()
        response.lists = WireArrays.pack(lists)
        response.counts = WireArrays.pack(counts)
        response.checksums = WireArrays.pack(checksums)
        return response
    }

    public func compact(_ request: Quiver_V1_CompactRequest) throws(RPCError) -> Quiver_V1_CompactResponse {
        let collection = try collection(request.collection)
        try checkModelVersion(request.modelVersion, of: collection, rpc: "Compact")
        let sizes: (before: Int, after: Int)
        do throws(WorkerWriteError) {
            sizes = try collection.compact()
        } catch {
            throw RPCError(error, collection: collection.name)
        }
        logger.info("compacted collection", metadata: ["collection": "\(collection.name)", "bytes_before": "\(sizes.before)",
                                                        "bytes_after": "\(sizes.after)"])
        var response = Quiver_V1_CompactResponse()
        response.bytesBefore = UInt64(sizes.before)
        response.bytesAfter = UInt64(sizes.after)
        return response
    }

    /// Compacts once removed rows outnumber live ones (and are many): space and replay time
    /// stay proportional to what is stored.
    func compactIfWorthIt(_ collection: ShardCollection) throws(RPCError) {
        let dead = collection.deadRows
        guard dead > 10_000, dead > collection.statistics.vectors else { return }
        do throws(WorkerWriteError) {
            _ = try collection.compact()
        } catch {
            throw RPCError(error, collection: collection.name)
        }
    }
}

extension IVFIndex {
    /// The vector a row stores for re-ranking (or, for IVF_FLAT, in its list), as float32.
    func storedVector(row: Int) -> [Float] {
        if rawVectors.precision != .none { return rawVectors.vector(row: row) }
        return []
    }
}
