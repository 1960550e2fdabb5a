/// The validated knobs of one search batch, with the defaults a user gets by leaving them unset.
public struct SearchSettings: Sendable, Equatable {
    public static let maxK = 10_000
    public static let maxResultSlots = 20_000_000

    public let k: Int
    public let nprobe: Int
    public let reorderK: Int

    /// Lists probed when the request leaves nprobe at 0: 2.5% of the lists, at least 8.
    /// On 100k normalised 384-d text embeddings with 632 lists (2√n) this probes 16 lists, which
    /// with SOAR spilling and re-ranking reaches recall@10 ≥ 0.9.
    public static func defaultNprobe(nlist: Int) -> Int {
        min(nlist, max(8, Int((Double(nlist) * 0.025).rounded(.up))))
    }

    /// Candidates re-ranked by default when raw vectors are stored: 40, and never fewer than k.
    public static func defaultReorderK(k: Int) -> Int { max(40, k) }

    /// Checks the request against the collection. nprobe 0 means the default; reorder_k nil
    /// means the default (re-ranking when raw vectors are stored) and 0 means no re-ranking.
    public init(k: Int, nprobe: Int, reorderK: Int?, queryCount: Int, nlist: Int,
                storesRawVectors: Bool) throws(SearchSettingsError) {
        guard k > 0 else { throw .invalidK(k) }
        guard k <= Self.maxK else { throw .invalidK(k) }
        guard queryCount > 0 else { throw .noQueries }
        guard queryCount * k <= Self.maxResultSlots else { throw .tooManyResults(queries: queryCount, k: k) }
        guard nprobe <= nlist else { throw .nprobeTooLarge(nprobe: nprobe, nlist: nlist) }
        if let reorderK, reorderK > 0 {
            guard storesRawVectors else { throw .reorderWithoutRawVectors }
            guard reorderK >= k else { throw .reorderBelowK(reorderK: reorderK, k: k) }
        }
        self.k = k
        self.nprobe = nprobe > 0 ? nprobe : Self.defaultNprobe(nlist: nlist)
        self.reorderK = reorderK ?? (storesRawVectors ? Self.defaultReorderK(k: k) : 0)
    }
}

/// A search request outside what the collection can answer; the message says what to change.
public enum SearchSettingsError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidK(Int)
    case noQueries
    case tooManyResults(queries: Int, k: Int)
    case nprobeTooLarge(nprobe: Int, nlist: Int)
    case reorderWithoutRawVectors
    case reorderBelowK(reorderK: Int, k: Int)

    /// Whether the request is well-formed but too big (RESOURCE_EXHAUSTED) rather than invalid.
    public var isTooLarge: Bool {
        if case .tooManyResults = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .invalidK(let k):
            "k must be between 1 and \(SearchSettings.maxK), got \(k)"
        case .noQueries:
            "the request carries no queries"
        case .tooManyResults(let queries, let k):
            "\(queries) queries × k \(k) is more than \(SearchSettings.maxResultSlots) result slots; split the batch"
        case .nprobeTooLarge(let nprobe, let nlist):
            "nprobe \(nprobe) exceeds the collection's \(nlist) lists; use at most \(nlist) (0 = default)"
        case .reorderWithoutRawVectors:
            "reorder_k needs raw vectors, but the collection was created without store_raw_vectors; leave reorder_k unset or 0"
        case .reorderBelowK(let reorderK, let k):
            "reorder_k \(reorderK) must be at least k \(k) (or unset for the default, 0 for none)"
        }
    }
}
