import QuiverCluster
import QuiverProtocol

extension Coordinator {
    /// Removes ids from every worker of the collection (where an id lives is only known to the
    /// workers). Acknowledged once every list's write quorum of serving replicas removed them; a
    /// worker that could not is behind on all its lists until repaired.
    func delete(_ request: Quiver_V1_DeleteRequest) async throws(CoordinatorError) -> Quiver_V1_DeleteResponse {
        let name = request.collection
        let serving = try serving(name)
        let ids: [Int64]
        do {
            ids = try WireArrays.unpack(request.ids, as: Int64.self, field: "ids")
        } catch {
            throw .invalidArgument(error.description)
        }
        guard !ids.isEmpty else { return Quiver_V1_DeleteResponse() }
        guard ids.count <= Self.maxBatchRows else {
            throw .resourceExhausted("\(ids.count) ids in one Delete, more than the \(Self.maxBatchRows) allowed; split it")
        }
        if let bad = ids.firstIndex(where: { $0 < 0 }) {
            throw .invalidArgument("ids[\(bad)] is \(ids[bad]); ids are non-negative")
        }
        let removed = try await gates[name].shared { () throws(CoordinatorError) -> Set<Int64> in
            let current = try self.serving(name)
            guard current.incarnation == serving.incarnation else { throw .notFound("collection \"\(name)\" was dropped") }
            let pool = pool
            let down = pool.down
            let results = await withTaskGroup(of: (WorkerID, [Int64]?, CoordinatorError?).self) { group in
                for worker in current.shardMap.workers {
                    group.addTask {
                        guard !down.contains(worker) else { return (worker, nil, .unavailable("worker \(worker) is down")) }
                        do throws(CoordinatorError) {
                            let removed = try await pool.deleteIDs(ids, collection: name, modelVersion: current.model.version, on: worker)
                            return (worker, removed, nil)
                        } catch {
                            return (worker, nil, error)
                        }
                    }
                }
                var results: [(WorkerID, [Int64]?, CoordinatorError?)] = []
                for await result in group { results.append(result) }
                return results.sorted { $0.0 < $1.0 }
            }
            if let refusal = results.compactMap(\.2).first(where: { $0.isRequestFault }) { throw refusal }
            let everyList = Set((0 ..< current.shardMap.nlist).map(Int32.init))
            try await settleWrite(current, lists: everyList, results: results.map { ($0.0, $0.2) }, what: "deleting \(ids.count) ids")
            return Set(results.flatMap { $0.1 ?? [] })
        }
        recordStored(name, incarnation: serving.incarnation, rows: -removed.count)
        var response = Quiver_V1_DeleteResponse()
        response.removed = UInt64(removed.count)
        return response
    }
}
