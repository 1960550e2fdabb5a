import Foundation
import FuzzSupport
import QuiverIndex
import QuiverProtocol
import QuiverStorage
import SwiftProtobuf

// Writes valid inputs for every fuzz target into fuzz/corpus/<Target>/, each prefixed with its
// selector byte. Usage: swift run --package-path fuzz MakeSeeds fuzz/corpus
let root = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "corpus"

func seed(_ target: String, _ name: String, _ selector: UInt8, _ bytes: [UInt8]) {
    let folder = root + "/" + target
    try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: folder + "/" + name, contents: Data([selector] + bytes))
}

func read(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path)!) }

// Datasets: one file of each format, vectors and ids.
let scratch = FuzzSupport.scratch
let rows = FuzzSupport.rows(5)
try! writeNpy(path: scratch + "/f32.npy", rows: 5, dimension: 8, values: rows.values)
try! writeNpy(path: scratch + "/u8.npy", rows: 2, dimension: 3, values: [UInt8]([1, 2, 3, 4, 5, 6]))
try! writeFvecs(path: scratch + "/v.fvecs", rows: 5, dimension: 8, values: rows.values)
try! writeBvecs(path: scratch + "/v.bvecs", rows: 2, dimension: 3, values: [UInt8]([1, 2, 3, 4, 5, 6]))
try! writeIvecs(path: scratch + "/i.ivecs", rows: 3, columns: 1, values: [Int32]([7, 8, 9]))
try! writeNpy(path: scratch + "/ids.npy", rows: 3, columns: 1, values: [Int64]([1, 2, 3]))
seed("FuzzDatasets", "npy-f32", 0, read(scratch + "/f32.npy"))
seed("FuzzDatasets", "npy-u8", 0, read(scratch + "/u8.npy"))
seed("FuzzDatasets", "fvecs", 1, read(scratch + "/v.fvecs"))
seed("FuzzDatasets", "bvecs", 2, read(scratch + "/v.bvecs"))
seed("FuzzDatasets", "ivecs-ids", 0x83, read(scratch + "/i.ivecs"))
seed("FuzzDatasets", "npy-ids", 0x80, read(scratch + "/ids.npy"))

// Storage: a segment with records, a manifest, a model, an index file.
let data = scratch + "/seed-store"
try? FileManager.default.removeItem(atPath: data)
let model = FuzzSupport.model
let store = try! CollectionStore.create(dataDirectory: data, name: "c", model: model)
var prepared = FuzzSupport.rows(6, seed: 11)
model.prepare(&prepared)
var index = IVFIndex(model: model)
let batch = try! index.encode(prepared: prepared, ids: (0 ..< 6).map(Int64.init), assignment: model.assign(prepared))
try! store.append(batch)
try! store.checkpoint()
let folder = CollectionStore.collectionsFolder(dataDirectory: data) + "/c"
seed("FuzzStorage", "segment", 0, read(folder + "/segment-000000000001.qseg"))
seed("FuzzStorage", "manifest", 1, read(folder + "/MANIFEST"))
seed("FuzzStorage", "model", 2, ModelCodec.encode(model))
try! index.append(batch)
try! IndexFile.save(index, to: scratch + "/seed.qvi")
seed("FuzzStorage", "index", 3, read(scratch + "/seed.qvi"))

// Requests: a search, an ingest and an assignment as the coordinator sends them.
var search = Quiver_V1_SearchListsRequest()
search.collection = "c"
search.modelVersion = model.version
search.shardMapVersion = 1
search.k = 3
search.reorderK = 5
search.queries = Quiver_V1_FloatMatrix(rows: 2, dimension: 8, values: Array(rows.values.prefix(16)))
search.probeOffsets = WireArrays.pack([UInt32(0), 2, 3])
search.probeListIds = WireArrays.pack([Int32(0), 1, 2])
seed("FuzzRequests", "search-lists", 0, try! search.serializedBytes())
let assignment = model.assign(prepared)
var ingest = Quiver_V1_IngestRequest()
ingest.collection = "c"
ingest.modelVersion = model.version
ingest.shardMapVersion = 1
ingest.batch.vectors = Quiver_V1_FloatMatrix(rows: 6, dimension: 8, values: prepared.values)
ingest.batch.ids = WireArrays.pack((100 ..< 106).map(Int64.init))
ingest.listIds = WireArrays.pack(assignment.primary)
ingest.spillListIds = WireArrays.pack(assignment.spill)
seed("FuzzRequests", "ingest", 1, try! ingest.serializedBytes())
var client = Quiver_V1_SearchRequest()
client.collection = "c"
client.k = 10
client.reorderK = 40
client.queries = search.queries
seed("FuzzRequests", "search", 2, try! client.serializedBytes())
var assign = Quiver_V1_AssignListsRequest()
assign.collection = "c"
assign.modelVersion = model.version
assign.shardMapVersion = 1
assign.listIds = WireArrays.pack([Int32(0), 1, 2, 3])
seed("FuzzRequests", "assign", 3, try! assign.serializedBytes())
print("seeds written to \(root)")
