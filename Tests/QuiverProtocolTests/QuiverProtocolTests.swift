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

    @Test func modelChunksReassemble() throws {
        var model = Quiver_V1_IvfPqModel()
        model.formatVersion = 1
        model.collection = "c"
        model.modelVersion = 7
        model.dimension = 4
        model.metric = .l2
        model.nlist = 2
        model.pqM = 2
        model.pqNbits = 4
        model.coarseCentroids = Self.packF32([Float](repeating: 1.5, count: 8))
        let serialized: Data = try model.serializedBytes()

        // Split into chunks the way a coordinator would stream InstallModel.
        let chunkSize = 16
        let chunks = stride(from: 0, to: serialized.count, by: chunkSize).map { offset in
            Quiver_V1_InstallModelChunk.with {
                $0.collection = "c"
                $0.modelVersion = 7
                $0.totalBytes = UInt64(serialized.count)
                $0.offset = UInt64(offset)
                $0.data = serialized.subdata(in: offset..<min(offset + chunkSize, serialized.count))
            }
        }
        #expect(chunks.count > 1)
        let reassembled = chunks.reduce(into: Data()) { $0.append($1.data) }
        #expect(try Quiver_V1_IvfPqModel(serializedBytes: reassembled) == model)
    }

    @Test func serviceDescriptorsArePresent() {
        #expect(Quiver_V1_Coordinator.descriptor.fullyQualifiedService == "quiver.v1.Coordinator")
        #expect(Quiver_V1_Worker.descriptor.fullyQualifiedService == "quiver.v1.Worker")
        #expect(Quiver_V1_Coordinator.Method.Search.descriptor.method == "Search")
    }
}
