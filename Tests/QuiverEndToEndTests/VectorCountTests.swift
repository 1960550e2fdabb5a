import Foundation
@testable import QuiverCoordinator
import QuiverIndex
import QuiverProtocol
import Testing

/// The vector count of a named load across a crash between its two writes (the count, then the
/// load's ledger), played on the coordinator's own store: no workers are needed to count.
@Suite struct VectorCountTests {
    private func coordinator(_ folder: URL) throws -> Coordinator {
        try Coordinator(options: CoordinatorOptions(dataDirectory: folder.path), logger: .init(label: "quiver.test"))
    }

    private func batch(rows: Range<Int>, load: String) -> LoadBatch {
        LoadBatch(vectors: Matrix(rows: rows.count, dimension: 4, values: [Float](repeating: 0.5, count: rows.count * 4)),
                  ids: nil, loadID: load, firstRow: rows.lowerBound)
    }

    /// Batches A and B are in flight when the coordinator dies just after counting A (before
    /// saving A in the ledger). Both are sent again and B finishes first: A must still count once.
    @Test func aBatchCountedJustBeforeACrashCountsOnceWhateverOrderTheResentBatchesEnd() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("quiver-count-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var config = Quiver_V1_CollectionConfig()
        config.name = "docs"
        config.dimension = 4
        config.metric = .l2
        let load = "job-1", a = 0 ..< 250, b = 250 ..< 500
        do {
            let first = try coordinator(folder)
            _ = try await first.createCollection(config)
            let incarnation = try await first.entry("docs").incarnation
            let before = try await first.store.loadLedger(load, collection: "docs") ?? LoadLedger()
            await first.batchAcknowledged("docs", incarnation: incarnation, batch: batch(rows: a, load: load), replaced: 0)
            // The crash: A's count is written, its ledger is not.
            try await first.store.saveLedger(before, load: load, collection: "docs")
            #expect(try await first.describe("docs").vectorCount == 250)
        }
        let restarted = try coordinator(folder)
        let incarnation = try await restarted.entry("docs").incarnation
        await restarted.batchAcknowledged("docs", incarnation: incarnation, batch: batch(rows: b, load: load), replaced: 0)
        await restarted.batchAcknowledged("docs", incarnation: incarnation, batch: batch(rows: a, load: load), replaced: 0)
        await restarted.batchAcknowledged("docs", incarnation: incarnation, batch: batch(rows: b, load: load), replaced: 0)
        #expect(try await restarted.describe("docs").vectorCount == 500)
        let ledger = try #require(try await restarted.store.loadLedger(load, collection: "docs"))
        #expect(ledger.acknowledged == [[0, 500]])
    }
}
