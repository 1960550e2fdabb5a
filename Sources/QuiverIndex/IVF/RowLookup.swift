/// What changing stored rows by id needs (a shard worker deletes, replaces and copies lists):
/// the row of each live id, and the lists each row has entries in. In-process indexes that only
/// add and search leave it off and pay nothing.
public struct RowLookup: Sendable, Equatable {
    var rowsByID = IDTable()
    /// Two list slots per row (−1: none). A row is in its primary list and at most one spill
    /// list; only a repair that copies a list from another replica can add a third, kept in `more`.
    var lists: [Int32] = []
    var more: [UInt32: [Int32]] = [:]
    /// Rows whose id was removed or replaced; their slots are reclaimed by compaction.
    public internal(set) var deadRows = 0
    /// Per list: entries and id checksum, kept current.
    var digests: [ListDigest] = []

    init(capacity: Int) {
        rowsByID = IDTable(capacity: capacity)
        lists.reserveCapacity(capacity * 2)
    }

    func lists(of row: UInt32) -> [Int32] {
        let r = Int(row)
        var result: [Int32] = []
        if lists[2 * r] >= 0 { result.append(lists[2 * r]) }
        if lists[2 * r + 1] >= 0 { result.append(lists[2 * r + 1]) }
        if let extra = more[row] { result += extra }
        return result
    }

    mutating func addRow() {
        lists.append(-1)
        lists.append(-1)
    }

    mutating func add(list: Int32, to row: UInt32) {
        let r = Int(row)
        if lists[2 * r] == list || lists[2 * r + 1] == list || more[row]?.contains(list) == true { return }
        if lists[2 * r] < 0 {
            lists[2 * r] = list
        } else if lists[2 * r + 1] < 0 {
            lists[2 * r + 1] = list
        } else {
            more[row, default: []].append(list)
        }
    }

    /// Forgets that `row` has an entry in `list`; true when it has none left.
    mutating func remove(list: Int32, from row: UInt32) -> Bool {
        let r = Int(row)
        if lists[2 * r] == list {
            lists[2 * r] = -1
        } else if lists[2 * r + 1] == list {
            lists[2 * r + 1] = -1
        } else if var extra = more[row], let position = extra.firstIndex(of: list) {
            extra.remove(at: position)
            more[row] = extra.isEmpty ? nil : extra
        }
        if lists[2 * r] < 0, lists[2 * r + 1] >= 0 {
            lists[2 * r] = lists[2 * r + 1]
            lists[2 * r + 1] = -1
        }
        if lists[2 * r + 1] < 0, var extra = more[row], !extra.isEmpty {
            lists[2 * r + 1] = extra.removeFirst()
            more[row] = extra.isEmpty ? nil : extra
        }
        return lists[2 * r] < 0
    }

    public var memoryBytes: Int { rowsByID.memoryBytes + lists.count * 4 }
}

/// A list's entries as another replica holds them: what a repair copies.
public struct ListExport: Sendable, Equatable {
    public var list: Int
    public var ids: [Int64]
    /// `ids.count × codeWidth` code bytes (FastScan entries unpacked), none for IVF_FLAT.
    public var codes: [UInt8]
    /// `ids.count × d` floats: raw vectors when stored (re-ranking), the vectors themselves for
    /// IVF_FLAT; empty otherwise.
    public var vectors: [Float]

    public init(list: Int, ids: [Int64], codes: [UInt8], vectors: [Float]) {
        self.list = list
        self.ids = ids
        self.codes = codes
        self.vectors = vectors
    }

    public var count: Int { ids.count }
}

/// A list's size and an order-independent checksum of its ids: equal on replicas that hold the
/// same rows, cheap to keep up to date.
public struct ListDigest: Sendable, Equatable, Hashable {
    public var count: Int
    public var checksum: UInt64

    public init(count: Int = 0, checksum: UInt64 = 0) {
        self.count = count
        self.checksum = checksum
    }

    static func mix(_ id: Int64) -> UInt64 {
        var x = UInt64(bitPattern: id) &+ 0x9E37_79B9_7F4A_7C15
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        return x ^ (x >> 31)
    }
}
