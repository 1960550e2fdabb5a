/// External id → row, by open addressing with linear probing: about 17 bytes per row at the
/// load it keeps, where a `Dictionary<Int64, UInt32>` costs twice that. Ids are non-negative,
/// so −1 marks an empty slot and −2 a removed one.
struct IDTable: Sendable, Equatable {
    private var keys: [Int64]
    private var values: [UInt32]
    private(set) var count = 0
    /// Occupied slots, removed ones included (what probing has to step over).
    private var used = 0

    private static let empty: Int64 = -1
    private static let removed: Int64 = -2

    init(capacity: Int = 0) {
        var size = 16
        while size * 7 < max(16, capacity) * 10 { size <<= 1 }
        keys = [Int64](repeating: Self.empty, count: size)
        values = [UInt32](repeating: 0, count: size)
    }

    private static func hash(_ id: Int64) -> Int {
        var x = UInt64(bitPattern: id)
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int(truncatingIfNeeded: x ^ (x >> 31))
    }

    private func slot(of id: Int64) -> Int? {
        let mask = keys.count - 1
        var slot = Self.hash(id) & mask
        while true {
            let key = keys[slot]
            if key == id { return slot }
            if key == Self.empty { return nil }
            slot = (slot + 1) & mask
        }
    }

    subscript(id: Int64) -> UInt32? {
        slot(of: id).map { values[$0] }
    }

    /// Sets the row of `id`, replacing any earlier one.
    mutating func set(_ id: Int64, row: UInt32) {
        precondition(id >= 0, "ids are non-negative")
        if let slot = slot(of: id) {
            values[slot] = row
            return
        }
        if (used + 1) * 10 > keys.count * 7 { rehash(to: count + 1) }
        let mask = keys.count - 1
        var slot = Self.hash(id) & mask
        while keys[slot] >= 0 { slot = (slot + 1) & mask }
        if keys[slot] == Self.empty { used += 1 }
        keys[slot] = id
        values[slot] = row
        count += 1
    }

    mutating func remove(_ id: Int64) {
        guard let slot = slot(of: id) else { return }
        keys[slot] = Self.removed
        count -= 1
    }

    private mutating func rehash(to wanted: Int) {
        var next = IDTable(capacity: max(wanted, count * 2))
        for (slot, key) in keys.enumerated() where key >= 0 { next.set(key, row: values[slot]) }
        self = next
    }

    var memoryBytes: Int { keys.count * 12 }
}
