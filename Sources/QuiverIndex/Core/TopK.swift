import CQuiverKernels

/// The k best (lowest-distance) candidates seen so far: a bounded max-heap kept in C so that the
/// FastScan kernel pushes into the very same structure that Swift code uses.
public struct TopK: ~Copyable {
    public let capacity: Int
    private let distances: UnsafeMutablePointer<Float>
    private let ids: UnsafeMutablePointer<Int64>
    public var heap: quiver_topk

    /// - Parameter dedupe: an id offered twice keeps its smaller distance (needed with spilling,
    ///   where one vector lives in two lists).
    public init(capacity: Int, dedupe: Bool = false) {
        precondition(capacity > 0, "top-k needs k > 0")
        self.capacity = capacity
        distances = .allocate(capacity: capacity)
        ids = .allocate(capacity: capacity)
        heap = quiver_topk(distances: distances, ids: ids, size: 0, capacity: Int32(capacity), dedupe: dedupe ? 1 : 0)
    }

    deinit {
        distances.deallocate()
        ids.deallocate()
    }

    public var count: Int { Int(heap.size) }

    /// Empties the heap, keeping its storage, and sets whether ids are deduplicated.
    public mutating func reset(dedupe: Bool? = nil) {
        heap.size = 0
        if let dedupe { heap.dedupe = dedupe ? 1 : 0 }
    }

    /// The distance a new candidate must beat (infinity until the heap is full).
    public var threshold: Float {
        withUnsafePointer(to: heap) { quiver_topk_threshold($0) }
    }

    @discardableResult
    public mutating func push(distance: Float, id: Int64) -> Bool {
        quiver_topk_push(&heap, distance, id) != 0
    }

    /// The held candidates sorted by (distance, id); the heap is empty afterwards.
    public mutating func drainSorted() -> [(distance: Float, id: Int64)] {
        quiver_topk_sort(&heap)
        let count = Int(heap.size)
        var result = [(distance: Float, id: Int64)]()
        result.reserveCapacity(count)
        for i in 0 ..< count { result.append((distances[i], ids[i])) }
        heap.size = 0
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
        heap.size = 0
    }
}
