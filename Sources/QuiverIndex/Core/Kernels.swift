import CQuiverKernels

/// Swift entry points to the C float kernels; they keep pointer plumbing out of the algorithms.
public enum Kernels {
    /// `out[i * b.rows + j] = <a_i, b_j>` — the GEMM behind k-means assignment, coarse scoring
    /// and exact search.
    public static func innerProducts(_ a: UnsafePointer<Float>, rows aRows: Int,
                                     _ b: UnsafePointer<Float>, rows bRows: Int,
                                     dimension: Int, into out: UnsafeMutablePointer<Float>) {
        quiver_inner_products(a, aRows, b, bRows, dimension, out, bRows)
    }

    public static func squaredNorms(_ a: UnsafePointer<Float>, rows: Int, dimension: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows) { buffer, initialized in
            quiver_squared_norms(a, rows, dimension, buffer.baseAddress!)
            initialized = rows
        }
    }

    public static func squaredNorms(_ matrix: Matrix) -> [Float] {
        matrix.values.withUnsafeBufferPointer { squaredNorms($0.baseAddress!, rows: matrix.rows, dimension: matrix.dimension) }
    }

    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension: Int) -> Float {
        quiver_dot(a, b, dimension)
    }

    @inlinable
    public static func l2Squared(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension: Int) -> Float {
        quiver_l2_squared(a, b, dimension)
    }

    public static func halfToFloat(_ source: UnsafePointer<UInt16>, _ destination: UnsafeMutablePointer<Float>, count: Int) {
        quiver_f16_to_f32(source, destination, count)
    }

    public static func floatToHalf(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<UInt16>, count: Int) {
        quiver_f32_to_f16(source, destination, count)
    }

    public static func crc32c(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        quiver_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    /// The index of the first NaN or infinity in `values`, if any. The common case (none) is one
    /// branch-free pass that vectorises: an exponent of all ones carries into bit 31.
    public static func firstNonFinite(_ values: UnsafeBufferPointer<Float>) -> Int? {
        guard let base = values.baseAddress else { return nil }
        let bits = UnsafeRawPointer(base).assumingMemoryBound(to: UInt32.self)
        var carry: UInt32 = 0
        for i in 0 ..< values.count {
            carry |= (bits[i] & 0x7F80_0000) &+ 0x0080_0000
        }
        guard carry & 0x8000_0000 != 0 else { return nil }
        return values.firstIndex { !$0.isFinite }
    }

    public static func firstNonFinite(_ values: [Float]) -> Int? {
        values.withUnsafeBufferPointer { firstNonFinite($0) }
    }

    /// The instruction set the FastScan kernel uses on this CPU.
    public static var bestISA: quiver_isa { quiver_best_isa() }
    public static var bestISAName: String { String(cString: quiver_isa_name(quiver_best_isa())) }
}
