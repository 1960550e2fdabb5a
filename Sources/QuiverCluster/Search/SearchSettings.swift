/// The validated knobs of one search batch, with the defaults a user gets by leaving them unset.
public struct SearchSettings: Sendable, Equatable {
    /// The largest k and re-ranking depth a search may ask for, on the coordinator and on every
    /// worker alike.
    public static let maxK = 10_000
    public static let maxReorderK = 10_000
    /// Bytes per answer slot a worker sends back: id (8), estimated and exact score (4 + 4).
    public static let bytesPerAnswerSlot = 16

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
    /// Answer slots (queries × candidates per query) whose answer fits a message of
    /// `maxMessageBytes`, with room to spare for the rest of the message.
    public static func maxAnswerSlots(maxMessageBytes: Int) -> Int {
        (maxMessageBytes - maxMessageBytes / 16) / bytesPerAnswerSlot
    }

    /// Checks the request against the collection and the message limit every hop shares: the
    /// answer a worker sends for this batch (`queries × max(k, reorder_k)` slots) must fit one
    /// message. nprobe 0 means the default; reorder_k nil means the default (re-ranking when raw
    /// vectors are stored) and 0 means no re-ranking.
    public init(k: Int, nprobe: Int, reorderK: Int?, queryCount: Int, nlist: Int,
                storesRawVectors: Bool, maxMessageBytes: Int) throws(SearchSettingsError) {
        guard k > 0, k <= Self.maxK else { throw .invalidK(k) }
        guard queryCount > 0 else { throw .noQueries }
        guard nprobe <= nlist else { throw .nprobeTooLarge(nprobe: nprobe, nlist: nlist) }
        if let reorderK, reorderK > 0 {
            guard storesRawVectors else { throw .reorderWithoutRawVectors }
            guard reorderK >= k else { throw .reorderBelowK(reorderK: reorderK, k: k) }
            guard reorderK <= Self.maxReorderK else { throw .reorderTooLarge(reorderK) }
        }
        self.k = k
        self.nprobe = nprobe > 0 ? nprobe : Self.defaultNprobe(nlist: nlist)
        self.reorderK = reorderK ?? (storesRawVectors ? Self.defaultReorderK(k: k) : 0)
        let perQuery = max(self.k, self.reorderK)
        let limit = Self.maxAnswerSlots(maxMessageBytes: maxMessageBytes)
        guard queryCount <= limit / perQuery else {
            throw .tooManyResults(queries: queryCount, perQuery: perQuery, maxQueries: limit / perQuery, maxMessageBytes: maxMessageBytes)
        }
    }
}

/// A search request outside what the collection can answer; the message says what to change.
public enum SearchSettingsError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidK(Int)
    case noQueries
    case tooManyResults(queries: Int, perQuery: Int, maxQueries: Int, maxMessageBytes: Int)
    case nprobeTooLarge(nprobe: Int, nlist: Int)
    case reorderWithoutRawVectors
    case reorderBelowK(reorderK: Int, k: Int)
    case reorderTooLarge(Int)

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
        case .tooManyResults(let queries, let perQuery, let maxQueries, let maxMessageBytes):
            "\(queries) queries × \(perQuery) candidates each would not fit the \(maxMessageBytes >> 20) MiB message limit "
                + "(at most \(maxQueries) queries per search at this k and reorder_k); split the batch"
        case .nprobeTooLarge(let nprobe, let nlist):
            "nprobe \(nprobe) exceeds the collection's \(nlist) lists; use at most \(nlist) (0 = default)"
        case .reorderWithoutRawVectors:
            "reorder_k needs raw vectors, but the collection was created without store_raw_vectors; leave reorder_k unset or 0"
        case .reorderBelowK(let reorderK, let k):
            "reorder_k \(reorderK) must be at least k \(k) (or unset for the default, 0 for none)"
        case .reorderTooLarge(let reorderK):
            "reorder_k must be at most \(SearchSettings.maxReorderK), got \(reorderK)"
        }
    }
}
