import CQuiverKernels

/// The k best (lowest-distance) candidates seen so far: a bounded max-heap kept in C so that the
/// FastScan kernel pushes into the very same structure that Swift code uses.
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
        distances = .allocate(capacity: capacity)
        ids = .allocate(capacity: capacity)
        if dedupe {
            dedupeIndex = .allocate(capacity: quiver_topk_index_size(Int32(capacity)))
            positions = .allocate(capacity: capacity)
        } else {
            dedupeIndex = nil
            positions = nil
        }
        heap = quiver_topk()
        quiver_topk_init(&heap, Int32(capacity), distances, ids, dedupeIndex, positions, tieKeys)
    }

    deinit {
        distances.deallocate()
        ids.deallocate()
        dedupeIndex?.deallocate()
        positions?.deallocate()
    }

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
