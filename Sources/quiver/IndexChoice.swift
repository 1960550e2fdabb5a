import Foundation
import ArgumentParser
import QuiverIndex

/// The index kinds `quiver bench` can build, named as users know them.
enum IndexKind: String, CaseIterable, ExpressibleByArgument {
    /// Brute force.
    case flat
    /// Inverted lists of raw vectors.
    case ivfflat
    /// Inverted lists of 8-bit PQ codes (m = d/4), float look-up tables.
    case ivfpq
    /// Inverted lists of 4-bit PQ codes (m = d/2) in FastScan blocks, score-aware codes and
    /// SOAR spilling for inner product, exact re-ranking.
    case fastscan

    var encoding: ListEncoding? {
        switch self {
        case .flat: nil
        case .ivfflat: .flat
        case .ivfpq: .pq8
        case .fastscan: .fastScan
        }
    }
}

/// A setting that is either off or a number, written `off` or `0.2` on the command line.
struct OptionalNumber: ExpressibleByArgument {
    let value: Float?
    init?(argument: String) {
        if ["off", "none", "no"].contains(argument.lowercased()) {
            value = nil
        } else if let number = Float(argument), number.isFinite, number >= 0 {
            value = number
        } else {
            return nil
        }
    }
}

extension RawVectorPrecision: ExpressibleByArgument {}
extension Metric: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
}

/// Parses comma-separated positive integers (`1,2,4,8`).
struct IntegerList: ExpressibleByArgument {
    let values: [Int]
    init?(argument: String) {
        let parts = argument.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        values = parts.map { $0! }
    }
}

/// Parses comma-separated numbers (`0.9,0.95`).
struct DoubleList: ExpressibleByArgument {
    let values: [Double]
    init?(argument: String) {
        let parts = argument.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        values = parts.map { $0! }
    }
}
