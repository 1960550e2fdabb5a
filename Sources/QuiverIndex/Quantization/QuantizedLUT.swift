/// Quantizes a float ADC table (`subspaces × 16` distances, lower is better) to the uint8 rows the
/// FastScan kernel shuffles: entry = round((value − min_s) · scale). One scale per query, one
/// bias (the sum of row minima) — so distance ≈ sum / scale + bias. The scale keeps every entry
/// ≤ 255 and the sum of the row maxima ≤ 65535, so 16-bit accumulation cannot overflow.
/// Rows from `subspaces` up to `paddedSubspaces` are written as zeros.
/// - Returns: (scale, bias).
@discardableResult
public func quantizeLUT(_ table: UnsafePointer<Float>, subspaces: Int, paddedSubspaces: Int,
                        into lut: UnsafeMutablePointer<UInt8>) -> (scale: Float, bias: Float) {
    var bias: Float = 0
    var maxRange: Float = 0
    var totalRange: Float = 0
    for s in 0 ..< subspaces {
        let row = table + s * 16
        var low = row[0], high = row[0]
        for c in 1 ..< 16 {
            low = min(low, row[c])
            high = max(high, row[c])
        }
        bias += low
        maxRange = max(maxRange, high - low)
        totalRange += high - low
    }
    // Rounding adds at most 0.5 per row, hence the margin of `subspaces` below 65535.
    var scale: Float = 1
    if maxRange > 0 {
        scale = min(255 / maxRange, Float(65535 - subspaces) / totalRange)
    }
    for s in 0 ..< subspaces {
        let row = table + s * 16
        var low = row[0]
        for c in 1 ..< 16 { low = min(low, row[c]) }
        for c in 0 ..< 16 {
            let value = ((row[c] - low) * scale).rounded()
            lut[s * 16 + c] = UInt8(min(255, max(0, value)))
        }
    }
    if paddedSubspaces > subspaces {
        (lut + subspaces * 16).initialize(repeating: 0, count: (paddedSubspaces - subspaces) * 16)
    }
    return (scale, bias)
}
