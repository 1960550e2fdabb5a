import Foundation
import QuiverProtocol
import Testing

/// Merging small SearchLists requests into one call and splitting the answer back must give
/// each caller exactly what its own call would have returned.
@Suite struct SearchListsBatchingTests {
    static func request(rows: Int, firstValue: Float, lists: [[Int32]], k: UInt32 = 10) -> Quiver_V1_SearchListsRequest {
        var request = Quiver_V1_SearchListsRequest()
        request.collection = "c"
        request.modelVersion = 3
        request.shardMapVersion = 5
        request.k = k
        request.reorderK = 20
        request.queries = Quiver_V1_FloatMatrix(rows: rows, dimension: 2,
                                                values: (0 ..< rows * 2).map { firstValue + Float($0) })
        var offsets: [UInt32] = [0]
        for query in lists { offsets.append(offsets.last! + UInt32(query.count)) }
        request.probeOffsets = WireArrays.pack(offsets)
        request.probeListIds = WireArrays.pack(lists.flatMap { $0 })
        return request
    }

    @Test func combiningConcatenatesQueriesAndRebasesOffsets() throws {
        let a = Self.request(rows: 1, firstValue: 0, lists: [[4, 7]])
        let b = Self.request(rows: 2, firstValue: 100, lists: [[], [1, 2, 3]])
        let combined = try Quiver_V1_SearchListsRequest.combining([a, b])
        #expect(combined.queries.rows == 3)
        #expect(try combined.queries.values() == [0, 1, 100, 101, 102, 103])
        #expect(try WireArrays.unpack(combined.probeOffsets, as: UInt32.self, field: "o") == [0, 2, 2, 5])
        #expect(try WireArrays.unpack(combined.probeListIds, as: Int32.self, field: "l") == [4, 7, 1, 2, 3])
        #expect(combined.k == 10 && combined.reorderK == 20 && combined.collection == "c")
    }

    @Test func combiningRefusesRequestsThatCannotShareACall() {
        let a = Self.request(rows: 1, firstValue: 0, lists: [[4]])
        let b = Self.request(rows: 1, firstValue: 0, lists: [[4]], k: 5)
        #expect(!a.canShareCall(with: b))
        #expect(throws: WireFormatError.self) { try Quiver_V1_SearchListsRequest.combining([a, b]) }
    }

    @Test func splittingGivesEachPartItsRowsAndSkippedLists() throws {
        let slots = 2
        var response = Quiver_V1_SearchListsResponse()
        response.results = Quiver_V1_TopK(queryCount: 3, k: slots, ids: [10, 11, 20, 21, 30, -1],
                                          scores: [9, 8, 7, 6, 5, -.infinity])
        response.exactScores = WireArrays.pack([Float](arrayLiteral: 1, 2, 3, 4, 5, 6))
        response.listsScanned = WireArrays.pack([UInt32](arrayLiteral: 2, 0, 2))
        // Query 0 skipped nothing, query 1 skipped lists 8 and 9, query 2 skipped list 3.
        response.skippedOffsets = WireArrays.pack([UInt32](arrayLiteral: 0, 0, 2, 3))
        response.skippedListIds = WireArrays.pack([Int32](arrayLiteral: 8, 9, 3))
        response.codesScanned = 99
        let parts = try response.splitting(queryCounts: [1, 2])
        #expect(parts.count == 2)
        #expect(try parts[0].results.unpackedIDs() == [10, 11])
        #expect(try parts[1].results.unpackedIDs() == [20, 21, 30, -1])
        #expect(try parts[1].results.unpackedScores() == [7, 6, 5, -.infinity])
        #expect(try WireArrays.unpack(parts[0].exactScores, as: Float.self, field: "e") == [1, 2])
        #expect(try WireArrays.unpack(parts[1].listsScanned, as: UInt32.self, field: "s") == [0, 2])
        #expect(parts[0].skippedOffsets.isEmpty && parts[0].skippedListIds.isEmpty)
        #expect(try WireArrays.unpack(parts[1].skippedOffsets, as: UInt32.self, field: "o") == [0, 2, 3])
        #expect(try WireArrays.unpack(parts[1].skippedListIds, as: Int32.self, field: "l") == [8, 9, 3])
    }

    @Test func splittingRejectsAnAnswerOfTheWrongShape() {
        var response = Quiver_V1_SearchListsResponse()
        response.results = Quiver_V1_TopK(queryCount: 2, k: 1, ids: [1, 2], scores: [1, 2])
        #expect(throws: WireFormatError.self) { try response.splitting(queryCounts: [1, 2]) }
        response.skippedOffsets = WireArrays.pack([UInt32](arrayLiteral: 0, 2, 1))
        response.skippedListIds = WireArrays.pack([Int32](arrayLiteral: 5))
        #expect(throws: WireFormatError.self) { try response.splitting(queryCounts: [1, 1]) }
    }
}
