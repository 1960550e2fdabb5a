import QuiverIndex

#if _endian(big)
#error("Segment records are little-endian and arrays are copied without byte swapping")
#endif

/// What one segment record holds.
public enum SegmentEntry: Sendable, Equatable {
    /// Rows to store, replacing any stored rows with the same ids.
    case batch(EncodedBatch)
    /// Ids to remove.
    case deletion([Int64])
    /// The whole content of one list (a repair's copy from another replica, or a released list
    /// when empty): the list holds exactly these entries afterwards.
    case list(ListExport)
}

/// The byte form of one `SegmentEntry` in a segment file: a fixed header, then the entry's
/// arrays back to back, each copied in one piece.
///
/// Layout (little-endian, no padding):
///
///     header   magic "QVSR" (4) · flags u32 (bit 0: spill lists, bit 1: vectors, bit 2: vectors
///              are float16, bits 8–15: kind) · row count u32 · code width u32 · vector dimension u32
///              (0 without vectors) · payload length u64 · payload CRC-32C u32 · header CRC-32C u32
///              (of the 32 bytes before it)
///     payload  kind 0, batch:    ids n×i64 · primary lists n×i32 · [spill lists n×i32] · primary codes n×width
///                                · [spill codes n×width] · [vectors n×dimension f32 or f16]
///              kind 1, deletion: ids n×i64
///              kind 2, list:     list id i32 · ids n×i64 · codes n×width · [vectors n×dimension f32 or f16]
///
/// Vectors are written in float16 when the collection keeps its raw vectors in float16 (and its
/// lists are not flat): the index holds them rounded anyway, so replay rebuilds the same state
/// from half the bytes. Records written before bit 2 existed hold float32 and still replay.
///
/// The header has its own checksum so that a reader can tell a damaged header from a torn
/// one, and can search the bytes after a bad record for intact ones (see `SegmentFile`).
enum SegmentRecord {
    static let magic: [UInt8] = Array("QVSR".utf8)
    static let headerSize = 36
    static let spillFlag: UInt32 = 1
    static let vectorsFlag: UInt32 = 2
    static let halfVectorsFlag: UInt32 = 4
    static let kindShift: UInt32 = 8
    static let kindMask: UInt32 = 0xFF << 8

    enum Kind: UInt32 {
        case batch = 0
        case deletion = 1
        case list = 2
    }

    struct Header: Equatable {
        var flags: UInt32
        var rows: Int
        var codeWidth: Int
        var dimension: Int
        var payloadLength: Int
        var payloadCRC: UInt32

        var hasSpill: Bool { flags & SegmentRecord.spillFlag != 0 }
        var hasVectors: Bool { flags & SegmentRecord.vectorsFlag != 0 }
        var halfVectors: Bool { flags & SegmentRecord.halfVectorsFlag != 0 }
        var vectorBytes: Int { hasVectors ? dimension * (halfVectors ? 2 : 4) : 0 }
        var kind: Kind? { Kind(rawValue: (flags & SegmentRecord.kindMask) >> SegmentRecord.kindShift) }
        var recordLength: Int { SegmentRecord.headerSize + payloadLength }

        /// The payload length the shape implies; a stored length that differs means a damaged
        /// header. nil when it overflows (the fields are u32, so only the product can) or the
        /// kind is unknown.
        var expectedPayloadLength: Int? {
            let perRow: Int
            var fixed = 0
            switch kind {
            case .batch: perRow = 8 + 4 + (hasSpill ? 4 : 0) + codeWidth * (hasSpill ? 2 : 1) + vectorBytes
            case .deletion:
                guard !hasSpill, !hasVectors, !halfVectors, codeWidth == 0 else { return nil }
                perRow = 8
            case .list:
                guard !hasSpill else { return nil }
                perRow = 8 + codeWidth + vectorBytes
                fixed = 4
            case nil: return nil
            }
            let (total, overflow) = rows.multipliedReportingOverflow(by: perRow)
            return overflow ? nil : total + fixed
        }
    }

    /// Header and payload of `batch`, ready to append with one write; its vectors in float16
    /// when `halfVectors` (the caller has checked they are in range).
    static func encode(_ batch: EncodedBatch, dimension: Int, halfVectors: Bool = false) -> [UInt8] {
        let n = batch.count
        let hasSpill = !batch.spill.isEmpty
        let hasVectors = !batch.vectors.isEmpty
        return record(kind: .batch, rows: n, codeWidth: n > 0 ? batch.primaryCodes.count / n : 0,
                      dimension: hasVectors ? dimension : 0, spill: hasSpill, halfVectors: hasVectors && halfVectors) { parts in
            parts.copy(batch.ids)
            parts.copy(batch.primary)
            parts.copy(batch.spill)
            parts.copy(batch.primaryCodes)
            parts.copy(batch.spillCodes)
            parts.vectors(batch.vectors, half: halfVectors)
        }
    }

    static func encode(deletion ids: [Int64]) -> [UInt8] {
        record(kind: .deletion, rows: ids.count, codeWidth: 0, dimension: 0, spill: false, halfVectors: false) { parts in
            parts.copy(ids)
        }
    }

    static func encode(list export: ListExport, codeWidth: Int, dimension: Int, halfVectors: Bool = false) -> [UInt8] {
        let hasVectors = !export.vectors.isEmpty
        return record(kind: .list, rows: export.count, codeWidth: codeWidth, dimension: hasVectors ? dimension : 0,
                      spill: false, halfVectors: hasVectors && halfVectors) { parts in
            parts.copy([Int32(export.list)])
            parts.copy(export.ids)
            parts.copy(export.codes)
            parts.vectors(export.vectors, half: halfVectors)
        }
    }

    /// A record whose payload `fill` describes, array by array, in the layout's order: once to
    /// size it, once to copy each array straight into the record.
    private static func record(kind: Kind, rows n: Int, codeWidth: Int, dimension: Int, spill hasSpill: Bool,
                               halfVectors: Bool, fill: (inout RecordParts) -> Void) -> [UInt8] {
        var sizing = RecordParts(destination: nil)
        fill(&sizing)
        let payloadLength = sizing.offset
        let total = headerSize + payloadLength
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            var copying = RecordParts(destination: raw.baseAddress! + headerSize)
            fill(&copying)
            precondition(copying.offset == payloadLength, "a record's parts changed between sizing and copying")
            let payloadCRC = Kernels.crc32c(UnsafeRawBufferPointer(rebasing: raw[headerSize ..< total]))
            let flags = (hasSpill ? spillFlag : 0) | (dimension > 0 ? vectorsFlag : 0) | (halfVectors ? halfVectorsFlag : 0)
                | (kind.rawValue << kindShift)
            raw.copyBytes(from: magic)
            raw.storeBytes(of: flags.littleEndian, toByteOffset: 4, as: UInt32.self)
            raw.storeBytes(of: UInt32(n).littleEndian, toByteOffset: 8, as: UInt32.self)
            raw.storeBytes(of: UInt32(codeWidth).littleEndian, toByteOffset: 12, as: UInt32.self)
            raw.storeBytes(of: UInt32(dimension).littleEndian, toByteOffset: 16, as: UInt32.self)
            raw.storeBytes(of: UInt64(payloadLength).littleEndian, toByteOffset: 20, as: UInt64.self)
            raw.storeBytes(of: payloadCRC.littleEndian, toByteOffset: 28, as: UInt32.self)
            let headerCRC = Kernels.crc32c(UnsafeRawBufferPointer(rebasing: raw[0 ..< 32]))
            raw.storeBytes(of: headerCRC.littleEndian, toByteOffset: 32, as: UInt32.self)
            initialized = total
        }
    }

    /// Parses a header; nil when the magic, checksum or shape is wrong.
    static func decodeHeader(_ bytes: UnsafeRawBufferPointer) -> Header? {
        guard bytes.count >= headerSize, bytes.prefix(4).elementsEqual(magic) else { return nil }
        let storedCRC = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 32, as: UInt32.self))
        guard Kernels.crc32c(UnsafeRawBufferPointer(rebasing: bytes[0 ..< 32])) == storedCRC else { return nil }
        func u32(_ offset: Int) -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        let payloadLength = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 20, as: UInt64.self))
        guard payloadLength <= UInt64(Int.max) else { return nil }
        let header = Header(flags: u32(4), rows: Int(u32(8)), codeWidth: Int(u32(12)), dimension: Int(u32(16)),
                            payloadLength: Int(payloadLength), payloadCRC: u32(28))
        guard header.flags & ~(spillFlag | vectorsFlag | halfVectorsFlag | kindMask) == 0, header.kind != nil,
              header.hasVectors == (header.dimension > 0), !header.halfVectors || header.hasVectors,
              header.expectedPayloadLength == header.payloadLength else { return nil }
        return header
    }

    /// The entry in a payload whose length and checksum the caller has verified.
    static func decodePayload(_ payload: UnsafeRawBufferPointer, header: Header) -> SegmentEntry {
        let n = header.rows
        var offset = 0
        func take<T: BitwiseCopyable>(_: T.Type, _ count: Int) -> [T] {
            let bytes = count * MemoryLayout<T>.stride
            defer { offset += bytes }
            return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                if bytes > 0 {
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: payload[offset ..< offset + bytes]))
                }
                initialized = count
            }
        }
        func takeVectors() -> [Float] {
            guard header.hasVectors else { return [] }
            let count = n * header.dimension
            guard header.halfVectors else { return take(Float.self, count) }
            let halves = take(UInt16.self, count)  // copied out first: the offset may be odd
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                Kernels.halfToFloat(halves, buffer.baseAddress!, count: count)
                initialized = count
            }
        }
        switch header.kind! {
        case .batch:
            let ids = take(Int64.self, n)
            let primary = take(Int32.self, n)
            let spill = take(Int32.self, header.hasSpill ? n : 0)
            let primaryCodes = take(UInt8.self, n * header.codeWidth)
            let spillCodes = take(UInt8.self, header.hasSpill ? n * header.codeWidth : 0)
            let vectors = takeVectors()
            return .batch(EncodedBatch(ids: ids, primary: primary, spill: spill, primaryCodes: primaryCodes,
                                       spillCodes: spillCodes, vectors: vectors))
        case .deletion:
            return .deletion(take(Int64.self, n))
        case .list:
            let list = take(Int32.self, 1)[0]
            let ids = take(Int64.self, n)
            let codes = take(UInt8.self, n * header.codeWidth)
            let vectors = takeVectors()
            return .list(ListExport(list: Int(list), ids: ids, codes: codes, vectors: vectors))
        }
    }
}

/// Walks a record's arrays in order: sizes them (no destination), or copies each to its place.
struct RecordParts {
    let destination: UnsafeMutableRawPointer?
    fileprivate(set) var offset = 0

    mutating func copy<Element: BitwiseCopyable>(_ array: [Element]) {
        array.withUnsafeBytes { source in
            if let destination, source.count > 0 { (destination + offset).copyMemory(from: source.baseAddress!, byteCount: source.count) }
            offset += source.count
        }
    }

    /// Vectors as float32, or rounded to float16 when `half`.
    mutating func vectors(_ values: [Float], half: Bool) {
        guard half else { return copy(values) }
        if let destination, !values.isEmpty {
            let target = destination + offset
            if Int(bitPattern: target) % 2 == 0 {
                Kernels.floatToHalf(values, target.assumingMemoryBound(to: UInt16.self), count: values.count)
            } else {  // an odd offset (odd code width)
                let halves = [UInt16](unsafeUninitializedCapacity: values.count) { buffer, initialized in
                    Kernels.floatToHalf(values, buffer.baseAddress!, count: values.count)
                    initialized = values.count
                }
                halves.withUnsafeBytes { target.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
        }
        offset += values.count * 2
    }
}
