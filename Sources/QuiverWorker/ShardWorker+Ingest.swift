import GRPCCore
import QuiverIndex
import QuiverProtocol

/// The running totals of one Ingest stream.
public struct IngestSession: Sendable {
    /// Set by the first message; later messages must name the same collection or none.
    var collection: ShardCollection?
    public internal(set) var rowsStored: UInt64 = 0
    public internal(set) var rowsRejected: UInt64 = 0
    public internal(set) var shardMapVersion: UInt64 = 0

    public init() {}

    public var response: Quiver_V1_IngestResponse {
        var response = Quiver_V1_IngestResponse()
        response.rowsStored = rowsStored
        response.rowsRejected = rowsRejected
        response.shardMapVersion = shardMapVersion
        return response
    }
}

extension ShardWorker {
    /// Stores one Ingest message: checks it, drops rows for lists this worker does not own,
    /// encodes the rest (outside any lock), makes them durable, then visible to searches.
    /// When this returns, the message's accepted rows survive a crash.
    public func ingest(_ request: Quiver_V1_IngestRequest, session: inout IngestSession) throws(RPCError) {
        let collection: ShardCollection
        if let current = session.collection {
            guard request.collection.isEmpty || request.collection == current.name else {
                throw .invalidArgument("Ingest: message names collection \"\(request.collection)\" but the stream is for \"\(current.name)\"")
            }
            collection = current
        } else {
            guard !request.collection.isEmpty else { throw .invalidArgument("Ingest: the first message must name the collection") }
            collection = try self.collection(request.collection)
            session.collection = collection
        }
        try checkModelVersion(request.modelVersion, of: collection, rpc: "Ingest")
        let ownership = collection.currentOwnership
        session.shardMapVersion = ownership.shardMapVersion
        guard request.shardMapVersion <= ownership.shardMapVersion else {
            throw .failedPrecondition("Ingest: rows were routed with shard map version \(request.shardMapVersion), this worker "
                + "has \(ownership.shardMapVersion) for \"\(collection.name)\"; send AssignLists first")
        }

        let model = collection.model
        let matrix = request.batch.vectors
        let rows = Int(matrix.rows)
        guard rows > 0 else { return }
        guard Int(matrix.dimension) == model.dimension else {
            throw .invalidArgument("Ingest: vectors have dimension \(matrix.dimension), collection \"\(collection.name)\" has \(model.dimension)")
        }
        let values = try unpack(matrix.data, as: Float.self, count: rows * model.dimension, field: "batch.vectors.data")
        if let bad = Kernels.firstNonFinite(values) {
            throw .invalidArgument("Ingest: vector \(bad / model.dimension) has non-finite value \(values[bad]) at component \(bad % model.dimension)")
        }
        guard !request.batch.ids.isEmpty else {
            throw .invalidArgument("Ingest: batch.ids is empty; ids are mandatory on workers (the coordinator assigns them)")
        }
        let ids = try unpack(request.batch.ids, as: Int64.self, count: rows, field: "batch.ids")
        if let bad = ids.firstIndex(where: { $0 < 0 }) {
            throw .invalidArgument("Ingest: batch.ids[\(bad)] is \(ids[bad]); ids must be non-negative")
        }
        let primary = try unpack(request.listIds, as: Int32.self, count: rows, field: "list_ids")
        let spill = request.spillListIds.isEmpty
            ? [Int32](repeating: -1, count: rows)
            : try unpack(request.spillListIds, as: Int32.self, count: rows, field: "spill_list_ids")
        let nlist = Int32(model.nlist)
        if let bad = primary.firstIndex(where: { $0 < 0 || $0 >= nlist }) {
            throw .invalidArgument("Ingest: list_ids[\(bad)] = \(primary[bad]) is not a list of this model (nlist \(nlist))")
        }
        if let bad = spill.firstIndex(where: { $0 < -1 || $0 >= nlist }) {
            throw .invalidArgument("Ingest: spill_list_ids[\(bad)] = \(spill[bad]) is not a list of this model (nlist \(nlist)) nor -1")
        }

        // A row is stored only if every list it names here is owned: storing half of a spilled
        // row would lose a copy without anyone noticing, a rejection makes the coordinator re-route.
        let accepted = (0 ..< rows).filter { ownership.owns(primary[$0]) && (spill[$0] < 0 || ownership.owns(spill[$0])) }
        session.rowsRejected += UInt64(rows - accepted.count)
        guard !accepted.isEmpty else { return }
        let all = accepted.count == rows
        let vectors = Matrix(rows: rows, dimension: model.dimension, values: values)
        let batch: EncodedBatch
        do {
            batch = try collection.encoder.encode(
                prepared: all ? vectors : vectors.gathering(accepted),
                ids: all ? ids : accepted.map { ids[$0] },
                assignment: IVFModel.Assignment(primary: all ? primary : accepted.map { primary[$0] },
                                                spill: all ? spill : accepted.map { spill[$0] }),
                threads: options.threads)
            try batch.validate(for: model)
        } catch {
            throw .invalidArgument("Ingest: \(error)")
        }
        do throws(WorkerWriteError) {
            try collection.append(batch)
        } catch {
            throw RPCError(error, collection: collection.name)
        }
        session.rowsStored += UInt64(batch.count)
    }
}
