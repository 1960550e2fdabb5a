/// Hot loops that turn stored values into Float. They work on raw pointers into the mapping:
/// no allocation, no Foundation, and unaligned loads because non-numpy writers do not always
/// align the data section.
enum ElementConversion {
    /// Every float16 bit pattern's Float value. A 256 KiB table lookup beats the soft-float
    /// conversion Swift emits on baseline x86-64 (no F16C), and stays in L2 during a scan.
    static let float16Table: [Float] = (0...UInt16.max).map { Float(Float16(bitPattern: $0)) }

    static func toFloat(
        _ source: UnsafeRawPointer, type: VectorElementType, count: Int,
        into destination: UnsafeMutablePointer<Float>
    ) {
        switch type {
        case .float32:
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
        case .float16:
            float16Table.withUnsafeBufferPointer { table in
                let lookup = table.baseAddress.unsafelyUnwrapped
                for i in 0..<count {
                    let bits = source.loadUnaligned(fromByteOffset: 2 &* i, as: UInt16.self)
                    destination[i] = lookup[Int(bits)]
                }
            }
        case .uint8:
            let bytes = source.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { destination[i] = Float(bytes[i]) }
        case .int8:
            let bytes = source.assumingMemoryBound(to: Int8.self)
            for i in 0..<count { destination[i] = Float(bytes[i]) }
        case .int32:
            for i in 0..<count {
                destination[i] = Float(source.loadUnaligned(fromByteOffset: 4 &* i, as: Int32.self))
            }
        case .int64:
            for i in 0..<count {
                destination[i] = Float(source.loadUnaligned(fromByteOffset: 8 &* i, as: Int64.self))
            }
        }
    }

    static func toInt64(
        _ source: UnsafeRawPointer, type: VectorElementType, count: Int,
        into destination: UnsafeMutablePointer<Int64>
    ) {
        switch type {
        case .int64:
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 8)
        case .int32:
            for i in 0..<count {
                destination[i] = Int64(source.loadUnaligned(fromByteOffset: 4 &* i, as: Int32.self))
            }
        case .uint8:
            let bytes = source.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { destination[i] = Int64(bytes[i]) }
        case .int8:
            let bytes = source.assumingMemoryBound(to: Int8.self)
            for i in 0..<count { destination[i] = Int64(bytes[i]) }
        case .float32, .float16:
            preconditionFailure("float data is not an integer matrix")
        }
    }
}

/// A `count`-float array filled in place by `fill`, without zeroing it first; `fill`'s error
/// is passed on (Float is trivial, so the buffer may be claimed whole even after a failure).
func filledFloats(count: Int, _ fill: (UnsafeMutableBufferPointer<Float>) throws(DatasetError) -> Void) throws(DatasetError) -> [Float] {
    var failure: DatasetError?
    let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        do throws(DatasetError) {
            try fill(buffer)
        } catch {
            failure = error
        }
        initialized = count
    }
    if let failure { throw failure }
    return values
}
