import CQuiverKernels

/// The k best (lowest-distance) candidates seen so far, kept in C so that the FastScan kernel
/// pushes into the very same structure that Swift code uses: a bounded max-heap for small k, a
/// reservoir of 2k from QUIVER_TOPK_RESERVOIR_MIN on (the same entries kept, cheaper per entry).
public struct TopK: ~Copyable {
    public let capacity: Int
    private let distances: UnsafeMutablePointer<Float>
    private let ids: UnsafeMutablePointer<Int64>
    private let dedupeIndex: UnsafeMutablePointer<Int32>?
    private let positions: UnsafeMutablePointer<Int32>?
    public var heap: quiver_topk

    /// - Parameters:
    ///   - dedupe: an id offered twice keeps its smaller distance (needed with spilling, where one
    ///     vector lives in two lists); O(1) per push through an id → slot index.
    ///   - tieKeys: when the ids are rows of a table, that table's external ids: equal distances
    ///     then rank by external id, as everywhere else. Must outlive the heap's use.
    public init(capacity: Int, dedupe: Bool = false, tieKeys: UnsafePointer<Int64>? = nil) {
        precondition(capacity > 0 && capacity <= Int(Int32.max) / 4, "top-k needs 0 < k ≤ \(Int(Int32.max) / 4)")
        self.capacity = capacity
        let room = Int(quiver_topk_room(Int32(capacity)))
        distances = .allocate(capacity: room)
        ids = .allocate(capacity: room)
        if dedupe {
            dedupeIndex = .allocate(capacity: quiver_topk_index_size(Int32(room)))
            positions = .allocate(capacity: room)
        } else {
            dedupeIndex = nil
            positions = nil
        }
        heap = quiver_topk()
        quiver_topk_init(&heap, Int32(capacity), Int32(room), distances, ids, dedupeIndex, positions, tieKeys)
    }

    deinit {
        distances.deallocate()
        ids.deallocate()
        dedupeIndex?.deallocate()
        positions?.deallocate()
    }

    /// Entries held (a reservoir may hold up to twice the capacity until it is settled).
    public var count: Int { Int(heap.size) }

    /// Empties the heap, keeping its storage.
    public mutating func reset() {
        quiver_topk_clear(&heap)
    }

    /// The distance a new candidate must beat (infinity until the heap is full).
    public var threshold: Float {
        withUnsafePointer(to: heap) { quiver_topk_threshold($0) }
    }

    @discardableResult
    public mutating func push(distance: Float, id: Int64) -> Bool {
        quiver_topk_push(&heap, distance, id) != 0
    }

    /// The held candidates sorted by (distance, tie key); the heap is empty afterwards.
    public mutating func drainSorted() -> [(distance: Float, id: Int64)] {
        quiver_topk_sort(&heap)
        let count = Int(heap.size)
        var result = [(distance: Float, id: Int64)]()
        result.reserveCapacity(count)
        for i in 0 ..< count { result.append((distances[i], ids[i])) }
        quiver_topk_clear(&heap)
        return result
    }

    /// Writes the sorted candidates into `outDistances`/`outIds` (padding with +inf / -1 up to
    /// `slots`) and empties the heap.
    public mutating func drainSorted(into outDistances: UnsafeMutablePointer<Float>,
                                     _ outIds: UnsafeMutablePointer<Int64>, slots: Int) {
        quiver_topk_sort(&heap)
        let count = min(Int(heap.size), slots)
        for i in 0 ..< count {
            outDistances[i] = distances[i]
            outIds[i] = ids[i]
        }
        for i in count ..< slots {
            outDistances[i] = .infinity
            outIds[i] = -1
        }
        quiver_topk_clear(&heap)
    }
}

/// `count` heaps of one capacity in one allocation, for scans that fill several queries' heaps
/// at once (TopK is non-copyable, so it cannot live in an Array).
public struct TopKArray: ~Copyable {
    public let count: Int
    public let capacity: Int
    /// Storage slots per heap (quiver_topk_room).
    private let room: Int
    private let heaps: UnsafeMutablePointer<quiver_topk>
    private let distances: UnsafeMutablePointer<Float>
    private let ids: UnsafeMutablePointer<Int64>
    private let dedupeIndex: UnsafeMutablePointer<Int32>?
    private let positions: UnsafeMutablePointer<Int32>?

    public init(count: Int, capacity: Int, dedupe: Bool = false, tieKeys: UnsafePointer<Int64>? = nil) {
        precondition(count > 0 && capacity > 0 && capacity <= Int(Int32.max) / 4, "top-k needs 0 < k ≤ \(Int(Int32.max) / 4)")
        self.count = count
        self.capacity = capacity
        room = Int(quiver_topk_room(Int32(capacity)))
        heaps = .allocate(capacity: count)
        distances = .allocate(capacity: count * room)
        ids = .allocate(capacity: count * room)
        let indexSize = Int(quiver_topk_index_size(Int32(room)))
        dedupeIndex = dedupe ? .allocate(capacity: count * indexSize) : nil
        positions = dedupe ? .allocate(capacity: count * room) : nil
        for h in 0 ..< count {
            (heaps + h).initialize(to: quiver_topk())
            quiver_topk_init(heaps + h, Int32(capacity), Int32(room), distances + h * room, ids + h * room,
                             dedupeIndex.map { $0 + h * indexSize }, positions.map { $0 + h * room }, tieKeys)
        }
    }

    deinit {
        heaps.deallocate()
        distances.deallocate()
        ids.deallocate()
        dedupeIndex?.deallocate()
        positions?.deallocate()
    }

    /// Heap `index`; valid while this value lives.
    public func heap(_ index: Int) -> UnsafeMutablePointer<quiver_topk> { heaps + index }

    public func threshold(_ index: Int) -> Float { quiver_topk_threshold(heaps + index) }

    @discardableResult
    public func push(_ index: Int, distance: Float, id: Int64) -> Bool {
        quiver_topk_push(heaps + index, distance, id) != 0
    }

    public func reset(_ index: Int) { quiver_topk_clear(heaps + index) }

    /// Heap `index`'s ids in no particular order (what a re-rank needs); returns how many. The
    /// heap is empty afterwards.
    public func drain(_ index: Int, into outIds: UnsafeMutablePointer<Int64>) -> Int {
        let heap = heaps + index
        quiver_topk_settle(heap)
        let held = Int(heap.pointee.size)
        (outIds).update(from: ids + index * room, count: held)
        quiver_topk_clear(heap)
        return held
    }

    /// Heap `index`'s entries sorted by (distance, tie key), padded with +∞ / −1 up to `slots`;
    /// the heap is empty afterwards.
    public func drainSorted(_ index: Int, into outDistances: UnsafeMutablePointer<Float>,
                            _ outIds: UnsafeMutablePointer<Int64>, slots: Int) {
        let heap = heaps + index
        quiver_topk_sort(heap)
        let held = min(Int(heap.pointee.size), slots)
        let base = index * room
        for i in 0 ..< held {
            outDistances[i] = distances[base + i]
            outIds[i] = ids[base + i]
        }
        for i in held ..< slots {
            outDistances[i] = .infinity
            outIds[i] = -1
        }
        quiver_topk_clear(heap)
    }
}
