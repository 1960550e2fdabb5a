/// A small, fast, seedable generator (SplitMix64) so that training is reproducible from a seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Picks `sampleSize` distinct indices of `0..<population` uniformly (Floyd's algorithm when the
/// sample is small relative to the population, a partial shuffle otherwise), sorted ascending so
/// that reading them touches memory in order.
public func uniformSample(population: Int, sampleSize: Int, generator: inout SeededGenerator) -> [Int] {
    guard sampleSize < population else { return Array(0 ..< population) }
    if sampleSize * 4 > population {
        var all = Array(0 ..< population)
        for i in 0 ..< sampleSize {
            let j = Int.random(in: i ..< population, using: &generator)
            all.swapAt(i, j)
        }
        return all[0 ..< sampleSize].sorted()
    }
    var chosen = Set<Int>(minimumCapacity: sampleSize)
    for j in (population - sampleSize) ..< population {
        let t = Int.random(in: 0 ... j, using: &generator)
        if !chosen.insert(t).inserted { chosen.insert(j) }
    }
    return chosen.sorted()
}

/// Reservoir sampling (Algorithm R) for streams whose length is not known up front: offer rows
/// one at a time; at any point `sample` is a uniform sample of everything offered.
public struct ReservoirSampler: Sendable {
    public let capacity: Int
    public let dimension: Int
    public private(set) var seen = 0
    public private(set) var sample: Matrix
    private var generator: SeededGenerator

    public init(capacity: Int, dimension: Int, seed: UInt64) {
        self.capacity = capacity
        self.dimension = dimension
        self.sample = Matrix(rows: 0, dimension: dimension, values: [])
        self.generator = SeededGenerator(seed: seed)
        sample.values.reserveCapacity(min(capacity, 1 << 20) * dimension)
    }

    public mutating func offer(_ row: UnsafeBufferPointer<Float>) {
        precondition(row.count == dimension)
        seen += 1
        if sample.rows < capacity {
            sample.append(row: row)
            return
        }
        let slot = Int.random(in: 0 ..< seen, using: &generator)
        if slot < capacity {
            let dimension = dimension
            sample.values.withUnsafeMutableBufferPointer { values in
                for j in 0 ..< dimension { values[slot * dimension + j] = row[j] }
            }
        }
    }

    /// Offers `rows` consecutive rows stored contiguously.
    public mutating func offer(rows: UnsafeBufferPointer<Float>) {
        let count = rows.count / dimension
        for r in 0 ..< count {
            offer(UnsafeBufferPointer(rebasing: rows[r * dimension ..< (r + 1) * dimension]))
        }
    }
}
