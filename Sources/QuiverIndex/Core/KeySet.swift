/// A set of 64-bit keys for the merge paths, which ask "seen before?" once per candidate or per
/// probed pair: open addressing with linear probing and a multiplicative hash, cleared in place
/// between queries. `Set<Int64>` hashes with seeded SipHash through generic code, which took
/// about a tenth of a coordinator's CPU at batch 100.
///
/// The multiplier and the key mixing are seeded per process, so that ids a user picks cannot be
/// chosen to collide (every key in one chain would make each insert linear).
public struct KeySet: Sendable {
    private static let seed = UInt64.random(in: 1 ... .max) | 1
    private static let empty = UInt64.max

    private var slots: [UInt64]
    private var shift: UInt64
    private var holdsEmptyMarker = false
    public private(set) var count = 0

    /// Room for `capacity` keys before the table grows (it stays at most half full).
    public init(capacity: Int = 16) {
        var size = 16
        while size < 2 * capacity { size *= 2 }
        slots = [UInt64](repeating: Self.empty, count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
    }

    /// Inserts `key`; false when it was already present.
    @inline(__always)
    public mutating func insert(_ key: UInt64) -> Bool {
        // The empty-slot marker is a key too, held beside the table.
        if key == Self.empty {
            defer { holdsEmptyMarker = true }
            if holdsEmptyMarker { return false }
            count += 1
            return true
        }
        if 2 * (count + 1) > slots.count { grow() }
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: ((key ^ (Self.seed >> 1)) &* Self.seed) >> shift)
        while true {
            let held = slots[slot]
            if held == key { return false }
            if held == Self.empty {
                slots[slot] = key
                count += 1
                return true
            }
            slot = (slot + 1) & mask
        }
    }

    /// Forgets every key, keeping the table.
    public mutating func removeAll() {
        guard count > 0 else { return }
        for index in slots.indices { slots[index] = Self.empty }
        count = 0
        holdsEmptyMarker = false
    }

    private mutating func grow() {
        let old = slots
        slots = [UInt64](repeating: Self.empty, count: old.count * 2)
        shift -= 1
        count = holdsEmptyMarker ? 1 : 0
        for key in old where key != Self.empty { _ = insert(key) }
    }
}
