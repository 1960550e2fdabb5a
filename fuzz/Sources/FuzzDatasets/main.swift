import FuzzSupport
import QuiverStorage

/// First byte: which reader (and file extension); the rest: the file. Every reader must either
/// refuse the file with a DatasetError or hand back exactly rows × dimension finite-or-not
/// values; it must never crash, hang or read out of bounds.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDatasets(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    guard let (selector, file) = FuzzSupport.split(start, count) else { return 0 }
    let extensions = ["npy", "fvecs", "bvecs", "ivecs"]
    let path = FuzzSupport.file("input." + extensions[Int(selector) % extensions.count], file)
    if selector & 0x80 == 0 {
        if let dataset = try? VectorDataset(path: path) {
            let rows = min(dataset.count, 64)
            if let values = try? dataset.readRows(0 ..< rows) {
                precondition(values.count == rows * dataset.dimension, "reader returned \(values.count) values for \(rows) rows")
            }
        }
    } else if let ids = try? readIntegerMatrix(path: path) {
        precondition(ids.values.count == ids.rows * ids.columns, "id reader returned a ragged matrix")
    }
    return 0
}
