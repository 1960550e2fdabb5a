import CQuiverKernels

/// Quantizes a float ADC table (`subspaces × 16` distances, lower is better) to the uint8 rows the
/// FastScan kernel shuffles: entry = round((value − min_s) · scale). One scale per query, one
/// bias (the sum of row minima) — so distance ≈ sum / scale + bias. The scale keeps every entry
/// ≤ 255 and the sum of the row maxima ≤ 65535, so 16-bit accumulation cannot overflow.
/// Rows from `subspaces` up to `paddedSubspaces` are written as zeros.
/// - Returns: (scale, bias).
@discardableResult
public func quantizeLUT(_ table: UnsafePointer<Float>, subspaces: Int, paddedSubspaces: Int,
                        into lut: UnsafeMutablePointer<UInt8>, isa: quiver_isa = quiver_best_isa()) -> (scale: Float, bias: Float) {
    var scale: Float = 1
    var bias: Float = 0
    quiver_quantize_lut(isa, table, subspaces, paddedSubspaces, lut, &scale, &bias)
    return (scale, bias)
}
