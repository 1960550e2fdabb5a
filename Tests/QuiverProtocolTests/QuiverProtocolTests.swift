import Foundation
import QuiverProtocol
import SwiftProtobuf
import Testing

/// Smoke checks that the generated `quiver.v1` code is usable: messages round-trip through the
/// protobuf binary encoding (no networking), and the gRPC service descriptors are present.
@Suite struct QuiverProtocolTests {
    /// Packs values as little-endian bytes, the wire convention for bulk numeric fields.
    static func packLE<T: FixedWidthInteger>(_ values: [T]) -> Data {
        var out = Data(capacity: values.count * MemoryLayout<T>.size)
        for v in values { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }

    static func packF32(_ values: [Float]) -> Data { packLE(values.map(\.bitPattern)) }

    @Test func searchRequestRoundTrips() throws {
        let queries: [Float] = [0.5, -1.25, 3.0, 0.0, 1.0, 2.0, -0.5, 4.25]
        var request = Quiver_V1_SearchRequest()
        request.collection = "deep1m"
        request.k = 10
        request.nprobe = 32
        request.reorderK = 100
        request.queries = .with {
            $0.rows = 2
            $0.dimension = 4
            $0.data = Self.packF32(queries)
        }

        let bytes: Data = try request.serializedBytes()
        let decoded = try Quiver_V1_SearchRequest(serializedBytes: bytes)

        #expect(decoded == request)
        #expect(decoded.queries.data.count == 2 * 4 * MemoryLayout<Float>.size)
        let roundTripped = decoded.queries.data.withUnsafeBytes { raw in
            (0..<8).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        #expect(roundTripped == queries)
    }

    @Test func wireArraysRoundTripAndRejectWrongLengths() throws {
        let ids: [Int64] = [1, -1, 1 << 40]
        #expect(try WireArrays.unpack(WireArrays.pack(ids), as: Int64.self, count: 3, field: "ids") == ids)
        #expect(throws: WireFormatError.self) { try WireArrays.unpack(Data([1, 2, 3]), as: Int32.self, field: "lists") }
        #expect(throws: WireFormatError.self) { try WireArrays.unpack(WireArrays.pack(ids), as: Int64.self, count: 2, field: "ids") }
        let matrix = Quiver_V1_FloatMatrix(rows: 2, dimension: 3, values: [1, 2, 3, 4, 5, 6])
        #expect(try matrix.values() == [1, 2, 3, 4, 5, 6])
        var truncated = matrix
        truncated.data = truncated.data.prefix(20)
        let error = #expect(throws: WireFormatError.self) { try truncated.values(field: "queries") }
        #expect(error?.description.contains("queries") == true)
        #expect(HostAndPort("127.0.0.1:7700") == HostAndPort(host: "127.0.0.1", port: 7700))
        #expect(HostAndPort("[::1]:0")?.host == "::1")
        #expect(HostAndPort("localhost") == nil)
        #expect(HostAndPort("host:70000") == nil)
    }

    @Test func serviceDescriptorsArePresent() {
        #expect(Quiver_V1_Coordinator.descriptor.fullyQualifiedService == "quiver.v1.Coordinator")
        #expect(Quiver_V1_Worker.descriptor.fullyQualifiedService == "quiver.v1.Worker")
        #expect(Quiver_V1_Coordinator.Method.Search.descriptor.method == "Search")
    }
}
