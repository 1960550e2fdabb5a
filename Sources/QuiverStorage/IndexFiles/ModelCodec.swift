import CQuiverKernels
import QuiverIndex

/// The byte form of an `IVFModel`: what index files embed and what the coordinator ships to
/// workers, so it carries its own magic, version and checksum and needs nothing around it.
///
/// Layout (little-endian):
///
///     header   magic "QVRMODEL" (8) · format version u32 · payload CRC-32C u32 · payload length u64
///     payload  dimension i64 · nlist i64 · subspaces i64 · training iterations i64 · seed u64
///              metric u8 · encoding u8 · raw vectors u8 · spherical u8 (0 unset, 1 false, 2 true)
///              anisotropic threshold: present u8 (0/1) [· f32] · spill lambda: present u8 [· f32]
///              model version u64
///              centroids: rows i64 · dimension i64 · rows×dimension f32
///              quantizer: present u8 [· dimension i64 · subspaces i64 · bits u8 · count i64 · count f32]
///
/// Enum cases are stored as fixed numbers rather than names or declaration order, so renaming
/// or reordering a case cannot silently change what old bytes mean. Centroid norms and the
/// comparison are derived from the rest and recomputed on decode.
public enum ModelCodec {
    public static let magic: [UInt8] = Array("QVRMODEL".utf8)
    public static let formatVersion: UInt32 = 1
    static let headerSize = 24

    public static func encode(_ model: IVFModel) -> [UInt8] {
        let configuration = model.configuration
        let codebookCount = model.quantizer?.codebooks.count ?? 0
        var payload = LittleEndianWriter(capacity: 128 + 4 * (model.centroids.values.count + codebookCount))
        payload.append(Int64(configuration.dimension))
        payload.append(Int64(configuration.nlist))
        payload.append(Int64(configuration.subspaces))
        payload.append(Int64(configuration.trainingIterations))
        payload.append(configuration.seed)
        payload.append(code(of: configuration.metric))
        payload.append(code(of: configuration.encoding))
        payload.append(code(of: configuration.rawVectors))
        payload.append(UInt8(configuration.spherical.map { $0 ? 2 : 1 } ?? 0))
        appendOptional(configuration.anisotropicThreshold, to: &payload)
        appendOptional(configuration.spillLambda, to: &payload)
        payload.append(model.version)
        payload.append(Int64(model.centroids.rows))
        payload.append(Int64(model.centroids.dimension))
        payload.append(contentsOf: model.centroids.values)
        if let quantizer = model.quantizer {
            payload.append(UInt8(1))
            payload.append(Int64(quantizer.dimension))
            payload.append(Int64(quantizer.subspaces))
            payload.append(UInt8(quantizer.bitsPerCode))
            payload.append(Int64(quantizer.codebooks.count))
            payload.append(contentsOf: quantizer.codebooks)
        } else {
            payload.append(UInt8(0))
        }

        var out = LittleEndianWriter(capacity: headerSize + payload.bytes.count)
        out.append(magic)
        out.append(formatVersion)
        out.append(payload.bytes.withUnsafeBytes { Kernels.crc32c($0) })
        out.append(UInt64(payload.bytes.count))
        out.append(payload.bytes)
        return out.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(ModelCodecError) -> IVFModel {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ModelCodecError) in try decode(raw) }
        }
        return try result.get()
    }

    /// Checks the header, length and checksum, then every field, before building the model.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(ModelCodecError) -> IVFModel {
        var header = LittleEndianReader(bytes) { field, needed, available in
            ModelCodecError.truncated(field: field, needed: needed, available: available)
        }
        let foundMagic = Array(UnsafeRawBufferPointer(rebasing: bytes.prefix(magic.count)))
        guard foundMagic == magic else {
            if foundMagic.count < magic.count, magic.starts(with: foundMagic), !foundMagic.isEmpty {
                throw .truncated(field: "magic", needed: magic.count, available: foundMagic.count)
            }
            throw .badMagic(found: foundMagic)
        }
        _ = try header.readBytes(magic.count, "magic")
        let foundVersion = try header.read(UInt32.self, "format version")
        guard foundVersion == formatVersion else { throw .unsupportedVersion(found: foundVersion, supported: formatVersion) }
        let storedCRC = try header.read(UInt32.self, "payload checksum")
        let declaredLength = try header.read(UInt64.self, "payload length")
        guard declaredLength == UInt64(header.remaining) else {
            throw .lengthMismatch(declared: declaredLength, actual: header.remaining)
        }
        let payloadBytes = try header.readBytes(header.remaining, "payload")
        let computedCRC = Kernels.crc32c(payloadBytes)
        guard computedCRC == storedCRC else { throw .checksumMismatch(stored: storedCRC, computed: computedCRC) }

        var payload = LittleEndianReader(payloadBytes) { field, needed, available in
            ModelCodecError.truncated(field: field, needed: needed, available: available)
        }
        let dimension = try readInt(&payload, "dimension")
        let nlist = try readInt(&payload, "nlist")
        let subspaces = try readInt(&payload, "subspaces")
        let trainingIterations = try readInt(&payload, "training iterations")
        let seed = try payload.read(UInt64.self, "seed")
        let metric: Metric = try decodeEnum(&payload, "metric", metricCodes)
        let encoding: ListEncoding = try decodeEnum(&payload, "encoding", encodingCodes)
        let rawVectors: RawVectorPrecision = try decodeEnum(&payload, "raw vector precision", precisionCodes)
        let spherical: Bool? = switch try payload.read(UInt8.self, "spherical") {
        case 0: nil
        case 1: false
        case 2: true
        case let other: throw .unknownValue(field: "spherical", value: UInt64(other), known: "0 (unset), 1 (false), 2 (true)")
        }
        let anisotropicThreshold = try readOptional(&payload, "anisotropic threshold")
        let spillLambda = try readOptional(&payload, "spill lambda")
        var configuration = IVFConfiguration(dimension: dimension, metric: metric, nlist: nlist, encoding: encoding,
                                             subspaces: subspaces, anisotropicThreshold: anisotropicThreshold,
                                             spillLambda: spillLambda, rawVectors: rawVectors,
                                             trainingIterations: trainingIterations, seed: seed, spherical: spherical)
        // The initializer forces `none` for flat lists; keep whatever was stored.
        configuration.rawVectors = rawVectors
        do {
            try configuration.validate()
        } catch {
            throw .invalidConfiguration(error.description)
        }
        let version = try payload.read(UInt64.self, "model version")

        let centroidRows = try readInt(&payload, "centroid rows")
        let centroidDimension = try readInt(&payload, "centroid dimension")
        guard centroidRows == nlist, centroidDimension == dimension else {
            throw .shapeMismatch(field: "centroids", expected: "\(nlist)×\(dimension) (nlist × dimension)",
                                 found: "\(centroidRows)×\(centroidDimension)")
        }
        let (centroidCount, overflow) = nlist.multipliedReportingOverflow(by: dimension)
        guard !overflow else { throw .truncated(field: "centroids", needed: Int.max, available: payload.remaining) }
        let centroidValues = try payload.readArray(of: Float.self, count: centroidCount, "centroids")
        try requireFinite(centroidValues, "centroids")

        var quantizer: ProductQuantizer?
        let hasQuantizer = try payload.read(UInt8.self, "quantizer present")
        switch (hasQuantizer, encoding) {
        case (0, .flat): break
        case (1, .pq8), (1, .fastScan):
            let pqDimension = try readInt(&payload, "quantizer dimension")
            let pqSubspaces = try readInt(&payload, "quantizer subspaces")
            let bits = Int(try payload.read(UInt8.self, "quantizer bits per code"))
            let count = try readInt(&payload, "codebook size")
            guard pqDimension == dimension, pqSubspaces == subspaces, bits == configuration.bitsPerCode else {
                throw .shapeMismatch(
                    field: "quantizer",
                    expected: "dimension \(dimension), \(subspaces) subspaces, \(configuration.bitsPerCode)-bit codes",
                    found: "dimension \(pqDimension), \(pqSubspaces) subspaces, \(bits)-bit codes")
            }
            guard count == dimension << bits else {
                throw .shapeMismatch(field: "codebooks", expected: "\(dimension << bits) floats (dimension × \(1 << bits) centers)",
                                     found: "\(count)")
            }
            let codebooks = try payload.readArray(of: Float.self, count: count, "codebooks")
            try requireFinite(codebooks, "codebooks")
            quantizer = ProductQuantizer(dimension: dimension, subspaces: subspaces, bitsPerCode: bits, codebooks: codebooks)
        case (0, _), (1, _):
            throw .shapeMismatch(field: "quantizer", expected: encoding == .flat ? "none for flat lists" : "codebooks for \(encoding.rawValue) lists",
                                 found: hasQuantizer == 1 ? "codebooks" : "none")
        default:
            throw .unknownValue(field: "quantizer present", value: UInt64(hasQuantizer), known: "0 (absent), 1 (present)")
        }
        guard payload.remaining == 0 else { throw .trailingBytes(count: payload.remaining) }

        let centroids = Matrix(rows: nlist, dimension: dimension, values: centroidValues)
        return IVFModel(configuration: configuration, centroids: centroids, quantizer: quantizer, version: version)
    }

    // MARK: - Fields

    private static let metricCodes: [(Metric, UInt8)] = [(.innerProduct, 1), (.l2, 2), (.cosine, 3)]
    private static let encodingCodes: [(ListEncoding, UInt8)] = [(.flat, 1), (.pq8, 2), (.fastScan, 3)]
    static let precisionCodes: [(RawVectorPrecision, UInt8)] = [(.none, 0), (.float32, 1), (.float16, 2)]

    static func code<T: Equatable>(of value: T, in table: [(T, UInt8)]) -> UInt8 {
        table.first { $0.0 == value }!.1
    }

    private static func code(of metric: Metric) -> UInt8 { code(of: metric, in: metricCodes) }
    private static func code(of encoding: ListEncoding) -> UInt8 { code(of: encoding, in: encodingCodes) }
    private static func code(of precision: RawVectorPrecision) -> UInt8 { code(of: precision, in: precisionCodes) }

    private static func decodeEnum<T>(_ reader: inout LittleEndianReader<ModelCodecError>, _ field: String,
                                      _ table: [(T, UInt8)]) throws(ModelCodecError) -> T {
        let value = try reader.read(UInt8.self, field)
        guard let match = table.first(where: { $0.1 == value }) else {
            throw .unknownValue(field: field, value: UInt64(value),
                                known: table.map { "\($0.1) (\($0.0))" }.joined(separator: ", "))
        }
        return match.0
    }

    private static func appendOptional(_ value: Float?, to writer: inout LittleEndianWriter) {
        guard let value else { return writer.append(UInt8(0)) }
        writer.append(UInt8(1))
        writer.append(value)
    }

    private static func readOptional(_ reader: inout LittleEndianReader<ModelCodecError>,
                                     _ field: String) throws(ModelCodecError) -> Float? {
        switch try reader.read(UInt8.self, field + " present") {
        case 0: return nil
        case 1: return try reader.readFloat(field)
        case let other: throw .unknownValue(field: field + " present", value: UInt64(other), known: "0 (absent), 1 (present)")
        }
    }

    private static func readInt(_ reader: inout LittleEndianReader<ModelCodecError>, _ field: String) throws(ModelCodecError) -> Int {
        Int(try reader.read(Int64.self, field))
    }

    private static func requireFinite(_ values: [Float], _ field: String) throws(ModelCodecError) {
        if let bad = Kernels.firstNonFinite(values) {
            throw .nonFinite(field: field, index: bad, value: values[bad])
        }
    }
}

/// Why model bytes were rejected. Bytes that fail here are damaged or come from another
/// program or a newer Quiver; the fix is to re-send, re-save or upgrade, never to patch.
public enum ModelCodecError: Error, Equatable, CustomStringConvertible, Sendable {
    case truncated(field: String, needed: Int, available: Int)
    case badMagic(found: [UInt8])
    case unsupportedVersion(found: UInt32, supported: UInt32)
    case lengthMismatch(declared: UInt64, actual: Int)
    case checksumMismatch(stored: UInt32, computed: UInt32)
    case unknownValue(field: String, value: UInt64, known: String)
    case invalidConfiguration(String)
    case shapeMismatch(field: String, expected: String, found: String)
    case nonFinite(field: String, index: Int, value: Float)
    case trailingBytes(count: Int)

    public var description: String {
        switch self {
        case .truncated(let field, let needed, let available):
            let need = needed == Int.max ? "more bytes than any input can hold" : "\(needed) bytes"
            return "model bytes end early: \(field) needs \(need), only \(available) left; the data was cut short"
        case .badMagic(let found):
            return "not Quiver model bytes: expected magic \"QVRMODEL\", found \(hex(found))"
        case .unsupportedVersion(let found, let supported):
            return found > supported
                ? "model format version \(found) is newer than this build reads (\(supported)); upgrade Quiver"
                : "model format version \(found) is not supported; this build reads version \(supported)"
        case .lengthMismatch(let declared, let actual):
            return "model payload should be \(declared) bytes, found \(actual); the data was cut short or has extra bytes"
        case .checksumMismatch(let stored, let computed):
            return "model payload is corrupt: CRC-32C is \(hex32(computed)), header says \(hex32(stored))"
        case .unknownValue(let field, let value, let known):
            return "model field \(field) holds unknown value \(value); known: \(known)"
        case .invalidConfiguration(let message):
            return "model bytes hold an \(message)"
        case .shapeMismatch(let field, let expected, let found):
            return "model \(field): expected \(expected), found \(found)"
        case .nonFinite(let field, let index, let value):
            return "model \(field) value \(index) is \(value); a trained model holds only finite numbers"
        case .trailingBytes(let count):
            return "model payload has \(count) bytes after the last field; it was written by another format"
        }
    }
}

func hex(_ bytes: [UInt8]) -> String {
    guard !bytes.isEmpty else { return "nothing (no bytes)" }
    return bytes.map { byte in
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }.joined(separator: " ")
}

func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
