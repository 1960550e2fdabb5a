import QuiverIndex

/// The source of truth for one collection folder: which model, which lists, which segment files
/// and how many of their bytes are committed. It is replaced atomically (temporary file, fsync,
/// rename, folder fsync), so a crash leaves the old manifest or the new one; files in the folder
/// that it does not name are leftovers of an interrupted step and are removed on open.
///
/// Layout (little-endian):
///
///     header   magic "QVRMANIF" (8) · format version u32 · payload CRC-32C u32 · payload length u64
///     payload  generation u64 · model version u64 · shard map version u64
///              · owned list count u64 · owned list ids i32…
///              · segment count u64 · per segment: number u64 · committed bytes u64 · sealed u8
///              · next segment number u64
public struct CollectionManifest: Sendable, Equatable {
    /// One segment file. Sealed segments are exactly `committedBytes` long; the active one (the
    /// last) has at least that many committed bytes, and any records after them are checked on
    /// open, a torn one at the very end being cut off.
    public struct Segment: Sendable, Equatable {
        public var number: UInt64
        public var committedBytes: Int
        public var sealed: Bool

        public init(number: UInt64, committedBytes: Int, sealed: Bool) {
            self.number = number
            self.committedBytes = committedBytes
            self.sealed = sealed
        }
    }

    /// Bumped on every write, so replicas and logs can order manifests.
    public var generation: UInt64
    public var modelVersion: UInt64
    public var shardMapVersion: UInt64
    /// Ascending ids of the lists this worker owns.
    public var ownedLists: [Int32]
    public var segments: [Segment]
    public var nextSegmentNumber: UInt64

    public init(generation: UInt64 = 1, modelVersion: UInt64, shardMapVersion: UInt64 = 0, ownedLists: [Int32] = [],
                segments: [Segment], nextSegmentNumber: UInt64) {
        self.generation = generation
        self.modelVersion = modelVersion
        self.shardMapVersion = shardMapVersion
        self.ownedLists = ownedLists
        self.segments = segments
        self.nextSegmentNumber = nextSegmentNumber
    }

    static let magic: [UInt8] = Array("QVRMANIF".utf8)
    static let formatVersion: UInt32 = 1
    static let fileName = "MANIFEST"

    func encode() -> [UInt8] {
        var payload = LittleEndianWriter(capacity: 64 + ownedLists.count * 4 + segments.count * 17)
        payload.append(generation)
        payload.append(modelVersion)
        payload.append(shardMapVersion)
        payload.append(UInt64(ownedLists.count))
        payload.append(contentsOf: ownedLists)
        payload.append(UInt64(segments.count))
        for segment in segments {
            payload.append(segment.number)
            payload.append(UInt64(segment.committedBytes))
            payload.append(UInt8(segment.sealed ? 1 : 0))
        }
        payload.append(nextSegmentNumber)

        var out = LittleEndianWriter(capacity: 24 + payload.bytes.count)
        out.append(Self.magic)
        out.append(Self.formatVersion)
        out.append(payload.bytes.withUnsafeBytes { Kernels.crc32c($0) })
        out.append(UInt64(payload.bytes.count))
        out.append(payload.bytes)
        return out.bytes
    }

    /// Parses and checks a manifest; the error's reason says what is wrong, the caller adds the path.
    static func decode(_ bytes: [UInt8]) -> Result<CollectionManifest, ManifestDecodingError> {
        bytes.withUnsafeBytes { raw in
            Result { () throws(ManifestDecodingError) in try decode(raw) }
        }
    }

    private static func decode(_ bytes: UnsafeRawBufferPointer) throws(ManifestDecodingError) -> CollectionManifest {
        var reader = LittleEndianReader(bytes) { field, needed, available in
            ManifestDecodingError(reason: "\(field) needs \(needed) bytes, only \(available) left")
        }
        let foundMagic = try reader.readBytes(magic.count, "magic")
        guard foundMagic.elementsEqual(magic) else { throw ManifestDecodingError(reason: "not a Quiver manifest (bad magic)") }
        let version = try reader.read(UInt32.self, "format version")
        guard version == formatVersion else {
            throw ManifestDecodingError(reason: "format version \(version); this build reads \(formatVersion) — upgrade Quiver")
        }
        let storedCRC = try reader.read(UInt32.self, "checksum")
        let length = try reader.read(UInt64.self, "payload length")
        guard length == UInt64(reader.remaining) else {
            throw ManifestDecodingError(reason: "payload should be \(length) bytes, found \(reader.remaining)")
        }
        let payloadBytes = try reader.readBytes(reader.remaining, "payload")
        let computed = Kernels.crc32c(payloadBytes)
        guard computed == storedCRC else {
            throw ManifestDecodingError(reason: "CRC-32C is \(computed), header says \(storedCRC)")
        }
        var payload = LittleEndianReader(payloadBytes) { field, needed, available in
            ManifestDecodingError(reason: "\(field) needs \(needed) bytes, only \(available) left")
        }
        let generation = try payload.read(UInt64.self, "generation")
        let modelVersion = try payload.read(UInt64.self, "model version")
        let shardMapVersion = try payload.read(UInt64.self, "shard map version")
        let ownedCount = try payload.read(UInt64.self, "owned list count")
        guard ownedCount <= UInt64(payload.remaining / 4) else {
            throw ManifestDecodingError(reason: "owned list count \(ownedCount) exceeds the bytes left")
        }
        let ownedLists = try payload.readArray(of: Int32.self, count: Int(ownedCount), "owned lists")
        let segmentCount = try payload.read(UInt64.self, "segment count")
        guard segmentCount <= UInt64(payload.remaining / 17) else {
            throw ManifestDecodingError(reason: "segment count \(segmentCount) exceeds the bytes left")
        }
        var segments: [Segment] = []
        for _ in 0 ..< segmentCount {
            let number = try payload.read(UInt64.self, "segment number")
            let committed = try payload.read(UInt64.self, "committed bytes")
            let sealed = try payload.read(UInt8.self, "sealed")
            guard committed <= UInt64(Int.max), sealed <= 1 else {
                throw ManifestDecodingError(reason: "segment \(number) has an invalid length or sealed flag")
            }
            segments.append(Segment(number: number, committedBytes: Int(committed), sealed: sealed == 1))
        }
        let nextSegmentNumber = try payload.read(UInt64.self, "next segment number")
        guard payload.remaining == 0 else { throw ManifestDecodingError(reason: "\(payload.remaining) trailing bytes") }
        guard let active = segments.last, !active.sealed, segments.dropLast().allSatisfy(\.sealed) else {
            throw ManifestDecodingError(reason: "segments must be sealed except the last, which must be active")
        }
        guard zip(segments, segments.dropFirst()).allSatisfy({ $0.number < $1.number }),
              active.number < nextSegmentNumber else {
            throw ManifestDecodingError(reason: "segment numbers are not ascending or not below the next number")
        }
        return CollectionManifest(generation: generation, modelVersion: modelVersion, shardMapVersion: shardMapVersion,
                                  ownedLists: ownedLists, segments: segments, nextSegmentNumber: nextSegmentNumber)
    }
}

struct ManifestDecodingError: Error {
    let reason: String
}
