import Foundation
import FuzzSupport
import QuiverCluster
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import QuiverWorker
import SwiftProtobuf

/// A worker with the small model installed, owning lists 0–2 of 4 and holding a few rows; each
/// input is a protobuf request (first byte: which RPC) decoded and handled exactly as the
/// worker's gRPC shell would. A request must be answered or refused with an RPCError — never
/// crash the worker — and no refused request may change what the worker stores.
private let worker: ShardWorker = {
    let data = FuzzSupport.scratch + "/worker"
    try? FileManager.default.removeItem(atPath: data)
    let worker = try! ShardWorker.open(dataDirectory: data, options: .init(workerID: "fuzz", threads: 1))
    let model = FuzzSupport.model
    _ = try! worker.installModel(collection: "c", version: model.version, bytes: ModelCodec.encode(model))
    var assign = Quiver_V1_AssignListsRequest()
    assign.collection = "c"
    assign.modelVersion = model.version
    assign.shardMapVersion = 1
    assign.listIds = WireArrays.pack([Int32(0), 1, 2, 3])
    _ = try! worker.assignLists(assign)
    return worker
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequests(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let (selector, input) = FuzzSupport.split(start, count) else { return 0 }
    let bytes = Array(input)
    switch selector % 4 {
    case 0:
        guard let request = try? Quiver_V1_SearchListsRequest(serializedBytes: bytes) else { return 0 }
        _ = try? worker.searchLists(request)
    case 1:
        guard let request = try? Quiver_V1_IngestRequest(serializedBytes: bytes) else { return 0 }
        var session = IngestSession()
        _ = try? worker.ingest(request, session: &session)
    case 2:
        guard let request = try? Quiver_V1_SearchRequest(serializedBytes: bytes) else { return 0 }
        // The coordinator's checks of a client's search, before any worker is asked.
        _ = try? SearchSettings(k: Int(request.k), nprobe: Int(request.nprobe),
                                reorderK: request.hasReorderK ? Int(request.reorderK) : nil, queryCount: Int(request.queries.rows),
                                nlist: 4, storesRawVectors: true, maxMessageBytes: QuiverGRPC.maxMessageBytes)
        _ = try? request.queries.values(field: "queries")
    default:
        guard let request = try? Quiver_V1_AssignListsRequest(serializedBytes: bytes) else { return 0 }
        // Only the stale-or-equal versions: a newer one would legitimately change ownership.
        var stale = request
        stale.shardMapVersion = min(request.shardMapVersion, 1)
        _ = try? worker.assignLists(stale)
    }
    return 0
}
