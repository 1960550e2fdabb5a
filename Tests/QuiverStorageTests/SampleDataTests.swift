import Foundation
import Testing

@testable import QuiverStorage

/// Reads the real pkgdesc sample when this machine has it; kept to a few batches so it stays
/// quick in debug builds.
@Suite struct SampleDataTests {
    static let directory = "/work/shared/data/pkgdesc"
    static let available = FileManager.default.fileExists(atPath: directory + "/base.npy")

    @Test(.enabled(if: available, "pkgdesc sample not present"))
    func pkgdescSample() throws {
        let base = try VectorDataset(pattern: Self.directory + "/base.npy")
        #expect(base.files[0].elementType == .float16)
        #expect(base.count == 100_000 && base.dimension == 384)
        let queries = try VectorFile.open(Self.directory + "/queries.npy")
        #expect(queries.count == 10_000 && queries.dimension == 384)

        // Embeddings of this kind are normalised; a wrong element type or offset would not be.
        for range in [0..<100, (base.count - 100)..<base.count] {
            let rows = try base.readRows(range)
            for row in 0..<range.count {
                let norm = rows[(row * 384)..<((row + 1) * 384)].reduce(0) { $0 + $1 * $1 }.squareRoot()
                #expect(abs(norm - 1) < 0.01, "row \(range.lowerBound + row) has norm \(norm)")
            }
        }

        let truth = try readIntegerMatrix(path: Self.directory + "/groundtruth.npy")
        #expect(truth.rows == 10_000 && truth.columns == 100)
        #expect(truth.values.allSatisfy { $0 >= 0 && $0 < 100_000 })
    }
}
