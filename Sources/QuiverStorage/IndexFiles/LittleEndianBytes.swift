#if _endian(big)
#error("Index files and model bytes are little-endian and arrays are copied without byte swapping")
#endif

/// Appends little-endian fields and whole arrays (as one copy of their bytes) to a byte array.
struct LittleEndianWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ value: Float) { append(value.bitPattern) }

    mutating func append(_ raw: some Collection<UInt8>) { bytes.append(contentsOf: raw) }

    mutating func append<T: BitwiseCopyable>(contentsOf array: [T]) {
        array.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }
}

/// Reads little-endian fields from a byte range; every read is bounds-checked and reports
/// the field that did not fit through `onShort`, so callers keep their own error types.
struct LittleEndianReader<Failure: Error> {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0
    private let onShort: (_ field: String, _ needed: Int, _ available: Int) -> Failure

    init(_ bytes: UnsafeRawBufferPointer,
         onShort: @escaping (_ field: String, _ needed: Int, _ available: Int) -> Failure) {
        self.bytes = bytes
        self.onShort = onShort
    }

    var remaining: Int { bytes.count - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: String) throws(Failure) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw onShort(field, size, remaining) }
        defer { offset += size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    mutating func readFloat(_ field: String) throws(Failure) -> Float {
        Float(bitPattern: try read(UInt32.self, field))
    }

    mutating func readBytes(_ count: Int, _ field: String) throws(Failure) -> UnsafeRawBufferPointer {
        guard count >= 0, remaining >= count else { throw onShort(field, count, remaining) }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + count])
    }

    /// `count` elements copied in one go; `count` is checked against the bytes left before
    /// anything is allocated, so a corrupt count cannot ask for more memory than the input holds.
    mutating func readArray<T: BitwiseCopyable>(of _: T.Type, count: Int, _ field: String) throws(Failure) -> [T] {
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        guard count >= 0, !overflow, remaining >= byteCount else {
            throw onShort(field, overflow || count < 0 ? Int.max : byteCount, remaining)
        }
        let source = try readBytes(byteCount, field)
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            initialized = count
        }
    }
}
