import Foundation
import FuzzSupport
import QuiverIndex
import QuiverStorage

/// A collection folder made once (model, manifest, one segment with a few records); each input
/// replaces one of its files, then the folder is opened as a worker would at start-up. Opening
/// must either refuse with a CollectionStoreError or yield an index whose every row has a valid
/// list; the same for model files and index files decoded from the input.
private let template: [(path: String, bytes: [UInt8])] = {
    let data = FuzzSupport.scratch + "/template"
    try? FileManager.default.removeItem(atPath: data)
    let store = try! CollectionStore.create(dataDirectory: data, name: "c", model: FuzzSupport.model)
    let index = IVFIndex(model: FuzzSupport.model)
    for first in stride(from: 0, to: 30, by: 10) {
        var rows = FuzzSupport.rows(10, seed: UInt64(first + 1))
        FuzzSupport.model.prepare(&rows)
        let batch = try! index.encode(prepared: rows, ids: (first ..< first + 10).map(Int64.init),
                                      assignment: FuzzSupport.model.assign(rows))
        try! store.append(batch)
    }
    try! store.checkpoint()
    return FuzzSupport.snapshot(data)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStorage(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let (selector, input) = FuzzSupport.split(start, count) else { return 0 }
    switch selector % 4 {
    case 0, 1:
        let data = FuzzSupport.scratch + "/data"
        FuzzSupport.restore(template, into: data)
        let folder = CollectionStore.collectionsFolder(dataDirectory: data) + "/c"
        let target = selector % 4 == 0 ? "/segment-000000000001.qseg" : "/MANIFEST"
        FuzzSupport.write(folder + target, input)
        if let opened = try? CollectionStore.open(dataDirectory: data, name: "c") {
            precondition(opened.index.lists.count == opened.store.model.nlist)
        }
    case 2:
        if let model = try? ModelCodec.decode(input) {
            // A decoded model must survive being used: encode it again and assign a row.
            let again = try! ModelCodec.decode(ModelCodec.encode(model))
            precondition(again.nlist == model.nlist && again.dimension == model.dimension)
        }
    default:
        let path = FuzzSupport.file("input.qvi", input)
        if let index = try? IndexFile.load(path: path) {
            precondition(index.lists.count == index.model.nlist)
        }
    }
    return 0
}
