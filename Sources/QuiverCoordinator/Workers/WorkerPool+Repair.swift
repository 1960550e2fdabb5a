import Foundation
import GRPCCore
import QuiverCluster
import QuiverIndex
import QuiverProtocol

/// The worker RPCs behind deletes, duplicate checks and repairs.
extension WorkerPool {
    func deleteIDs(_ ids: [Int64], collection: String, modelVersion: UInt64, on worker: WorkerID) async throws(CoordinatorError) -> [Int64] {
        var request = Quiver_V1_DeleteIDsRequest()
        request.collection = collection
        request.modelVersion = modelVersion
        request.ids = WireArrays.pack(ids)
        return try await call(worker, "deleting \(ids.count) ids of \(collection)") { client, options in
            let response = try await client.deleteIDs(request, metadata: self.callMetadata, options: options)
            return try WireArrays.unpack(response.removedIds, as: Int64.self, field: "removed_ids")
        }
    }

    /// The requested ids a worker stores, with their stored vectors (empty without raw vectors).
    func lookupIDs(_ ids: [Int64], collection: String, modelVersion: UInt64,
                   on worker: WorkerID) async throws(CoordinatorError) -> (ids: [Int64], vectors: [Float]) {
        var request = Quiver_V1_LookupIDsRequest()
        request.collection = collection
        request.modelVersion = modelVersion
        request.ids = WireArrays.pack(ids)
        return try await call(worker, "looking up \(ids.count) ids of \(collection)") { client, options in
            let response = try await client.lookupIDs(request, metadata: self.callMetadata, options: options)
            return (try WireArrays.unpack(response.foundIds, as: Int64.self, field: "found_ids"),
                    try WireArrays.unpack(response.vectors, as: Float.self, field: "vectors"))
        }
    }

    /// Copies one list from `source` to `target`; returns the target's digest of it afterwards
    /// and the digest of what was sent, which must agree.
    func copyList(_ list: Int32, collection: String, modelVersion: UInt64, from source: WorkerID,
                  to target: WorkerID) async throws(CoordinatorError) -> (sent: ListDigest, stored: ListDigest) {
        var request = Quiver_V1_ExportListRequest()
        request.collection = collection
        request.modelVersion = modelVersion
        request.list = list
        let chunks = try await call(source, "copying list \(list) of \(collection) from it") { client, options in
            try await client.exportList(request, metadata: self.callMetadata, options: options) { response in
                var chunks: [Quiver_V1_ListChunk] = []
                for try await chunk in response.messages { chunks.append(chunk) }
                return chunks
            }
        }
        var sent = ListDigest()
        for chunk in chunks {
            let ids: [Int64]
            do {
                ids = try WireArrays.unpack(chunk.ids, as: Int64.self, field: "ids")
            } catch {
                throw .internalError("worker \(source) sent a malformed copy of list \(list): \(error)")
            }
            for id in ids { sent.insert(id) }
        }
        let stored = try await call(target, "copying list \(list) of \(collection) to it") { client, options in
            try await client.importList(metadata: self.callMetadata, options: options) { writer in
                for chunk in chunks { try await writer.write(chunk) }
            }
        }
        return (sent, ListDigest(count: Int(stored.entries), checksum: stored.checksum))
    }

    /// Entry count and id checksum of every list a worker owns.
    func listDigests(collection: String, modelVersion: UInt64, on worker: WorkerID) async throws(CoordinatorError) -> [Int32: ListDigest] {
        var request = Quiver_V1_ListDigestsRequest()
        request.collection = collection
        request.modelVersion = modelVersion
        return try await call(worker, "reading list digests of \(collection)") { client, options in
            let response = try await client.listDigests(request, metadata: self.callMetadata, options: options)
            let lists = try WireArrays.unpack(response.lists, as: Int32.self, field: "lists")
            let counts = try WireArrays.unpack(response.counts, as: UInt32.self, count: lists.count, field: "counts")
            let checksums = try WireArrays.unpack(response.checksums, as: UInt64.self, count: lists.count, field: "checksums")
            var digests: [Int32: ListDigest] = [:]
            for (position, list) in lists.enumerated() { digests[list] = ListDigest(count: Int(counts[position]), checksum: checksums[position]) }
            return digests
        }
    }

    func compact(collection: String, modelVersion: UInt64, on worker: WorkerID) async throws(CoordinatorError) {
        var request = Quiver_V1_CompactRequest()
        request.collection = collection
        request.modelVersion = modelVersion
        _ = try await call(worker, "compacting \(collection)", timeout: .seconds(600)) { client, options in
            try await client.compact(request, metadata: self.callMetadata, options: options)
        }
    }

    /// One call to a worker: its failure becomes a `CoordinatorError` naming the worker and the
    /// work, and counts against the worker's health unless the request itself was refused.
    /// A call the channel refused to send because its last connection attempt failed (it
    /// backs off before the next) never reached the worker: it is sent again for up to 3 s.
    func call<Result: Sendable>(_ worker: WorkerID, _ work: String, timeout: Duration = .seconds(60),
                                _ body: (Client, CallOptions) async throws -> Result) async throws(CoordinatorError) -> Result {
        let client = try client(worker)
        let started = ContinuousClock.now
        var delay = Duration.milliseconds(100)
        do {
            var result: Result?
            while result == nil {
                do {
                    result = try await body(client, .worker(timeout: timeout - (ContinuousClock.now - started)))
                } catch let error as RPCError where error.code == .unavailable && error.message.contains("transient failure state")
                    && ContinuousClock.now - started + delay < min(timeout, .seconds(3)) {
                    try await Task.sleep(for: delay)
                    delay = min(delay * 2, .milliseconds(500))
                }
            }
            recordSuccess(worker)
            return result!
        } catch {
            let code = (error as? RPCError)?.code
            if code.map({ $0.isRequestFault || $0.isWorkerStateFault }) == true { recordSuccess(worker) } else { recordFailure(worker, error) }
            throw CoordinatorError.wrapping(error, context: "\(work) on worker \(worker)")
        }
    }
}
