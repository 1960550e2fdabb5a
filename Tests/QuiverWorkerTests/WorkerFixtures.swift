import Foundation
import GRPCCore
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import QuiverWorker
import Testing

/// Builds protocol messages the way the coordinator sends them.
enum Requests {
    static func chunks(_ model: IVFModel, collection: String, chunkBytes: Int = 1000) -> [Quiver_V1_InstallModelChunk] {
        let bytes = ModelCodec.encode(model)
        return stride(from: 0, to: bytes.count, by: chunkBytes).map { offset in
            var chunk = Quiver_V1_InstallModelChunk()
            chunk.collection = collection
            chunk.modelVersion = model.version
            chunk.totalBytes = UInt64(bytes.count)
            chunk.offset = UInt64(offset)
            chunk.data = Data(bytes[offset ..< min(bytes.count, offset + chunkBytes)])
            return chunk
        }
    }

    static func assign(_ collection: String, modelVersion: UInt64 = 1, shardMapVersion: UInt64, lists: [Int32],
                       release: Bool = false) -> Quiver_V1_AssignListsRequest {
        var request = Quiver_V1_AssignListsRequest()
        request.collection = collection
        request.modelVersion = modelVersion
        request.shardMapVersion = shardMapVersion
        request.listIds = WireArrays.pack(lists)
        request.releaseUnowned = release
        return request
    }

    /// Rows routed with the model, as the coordinator routes them.
    static func ingest(_ collection: String, model: IVFModel, vectors: Matrix, firstID: Int64,
                       shardMapVersion: UInt64 = 1) -> Quiver_V1_IngestRequest {
        let assignment = model.assign(vectors)
        var request = Quiver_V1_IngestRequest()
        request.collection = collection
        request.modelVersion = model.version
        request.shardMapVersion = shardMapVersion
        request.batch.vectors = Quiver_V1_FloatMatrix(rows: vectors.rows, dimension: vectors.dimension, values: vectors.values)
        request.batch.ids = WireArrays.pack((0 ..< Int64(vectors.rows)).map { firstID + $0 })
        request.listIds = WireArrays.pack(assignment.primary)
        request.spillListIds = WireArrays.pack(assignment.spill)
        return request
    }

    /// Every query probes `lists`.
    static func search(_ collection: String, modelVersion: UInt64 = 1, queries: Matrix, lists: [Int32], k: Int,
                       reorderK: Int = 0) -> Quiver_V1_SearchListsRequest {
        var request = Quiver_V1_SearchListsRequest()
        request.collection = collection
        request.modelVersion = modelVersion
        request.shardMapVersion = 1
        request.k = UInt32(k)
        request.reorderK = UInt32(reorderK)
        request.queries = Quiver_V1_FloatMatrix(rows: queries.rows, dimension: queries.dimension, values: queries.values)
        request.probeOffsets = WireArrays.pack((0 ... queries.rows).map { UInt32($0 * lists.count) })
        request.probeListIds = WireArrays.pack(Array(repeatElement(lists, count: queries.rows).joined()))
        return request
    }

    static func digests(_ collection: String, modelVersion: UInt64 = 1) -> Quiver_V1_ListDigestsRequest {
        var request = Quiver_V1_ListDigestsRequest()
        request.collection = collection
        request.modelVersion = modelVersion
        return request
    }

    static func stream<Element: Sendable>(_ elements: [Element]) -> RPCAsyncSequence<Element, any Error> {
        RPCAsyncSequence(wrapping: AsyncThrowingStream<Element, any Error> { continuation in
            for element in elements { continuation.yield(element) }
            continuation.finish()
        })
    }

    static func context(_ method: MethodDescriptor) -> ServerContext {
        ServerContext(descriptor: method, remotePeer: "in-process", localPeer: "in-process", cancellation: .init())
    }
}

/// Runs `body` and expects an RPCError with `code`; returns its message.
@discardableResult
func expectStatus(_ code: RPCError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                  _ body: () throws -> Void) -> String {
    do {
        try body()
        Issue.record("expected \(code), the call succeeded", sourceLocation: sourceLocation)
    } catch let error as RPCError {
        #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
        return error.message
    } catch {
        Issue.record("expected RPCError \(code), got \(error)", sourceLocation: sourceLocation)
    }
    return ""
}

extension Quiver_V1_SearchListsResponse {
    var ids: [Int64] { (try? results.unpackedIDs()) ?? [] }
    var scores: [Float] { (try? results.unpackedScores()) ?? [] }
    var exact: [Float] { (try? WireArrays.unpack(exactScores, as: Float.self, field: "exact_scores")) ?? [] }
    var scanned: [UInt32] { (try? WireArrays.unpack(listsScanned, as: UInt32.self, field: "lists_scanned")) ?? [] }
    var skipped: [Int32] { (try? WireArrays.unpack(skippedListIds, as: Int32.self, field: "skipped_list_ids")) ?? [] }
}
