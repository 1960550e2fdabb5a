import Foundation
import QuiverIndex
import QuiverStorage
import Synchronization

/// Which lists of a collection this worker owns, under which shard map version.
struct ListOwnership: Sendable {
    var shardMapVersion: UInt64
    /// Indexed by list id.
    var owned: [Bool]
    var ownedCount: Int

    init(shardMapVersion: UInt64, lists: [Int32], nlist: Int) {
        self.shardMapVersion = shardMapVersion
        owned = [Bool](repeating: false, count: nlist)
        for list in lists { owned[Int(list)] = true }
        ownedCount = lists.count
    }

    func owns(_ list: Int32) -> Bool { list >= 0 && Int(list) < owned.count && owned[Int(list)] }
}

/// One collection on this worker: its durable store, the in-memory index replayed from it, and
/// the lists it owns.
///
/// Two locks, so the expensive parts never wait on each other needlessly:
/// - `indexLock` (reader-writer) guards `index` and `ownership`. Searches hold it for reading;
///   only the in-memory append (and an ownership change) takes it for writing, briefly.
/// - `writeLock` serialises everything that writes the store (append with its fsync, manifest
///   changes, drop), so an fsync never blocks searches.
///
/// A collection whose model is replaced or which is dropped is *retired*: it keeps answering
/// searches already under way but refuses further writes, which is what lets its successor take
/// over the same store safely.
final class ShardCollection: @unchecked Sendable {
    let name: String
    let model: IVFModel
    /// An index without entries on the same model, used only to encode: encoding needs just the
    /// model, and keeping it apart means no encoder ever holds a reference to the stored arrays.
    let encoder: IVFIndex
    let queriesServed = Atomic<UInt64>(0)

    private let indexLock = ReadWriteLock()
    private var index: IVFIndex
    private var ownership: ListOwnership

    private let writeLock = NSLock()
    private let store: CollectionStore
    private var retired = false

    /// Committed records skipped as damaged when the collection was opened; cleared by `compact`.
    private(set) var damagedRecords: Int

    init(store: CollectionStore, index: IVFIndex, damagedRecords: Int = 0) {
        name = store.name
        model = store.model
        encoder = IVFIndex(model: store.model)
        var index = index
        index.enableRowLookup()
        self.index = index
        self.store = store
        self.damagedRecords = damagedRecords
        ownership = ListOwnership(shardMapVersion: store.manifest.shardMapVersion, lists: store.manifest.ownedLists,
                                  nlist: store.model.nlist)
    }

    /// Runs `body` with the index and ownership, concurrently with other readers. `body` must not
    /// let the index escape: a reference kept past the lock would make the next append copy it.
    func read<Result, Failure: Error>(_ body: (borrowing IVFIndex, ListOwnership) throws(Failure) -> Result) throws(Failure) -> Result {
        try indexLock.withReadLock { () throws(Failure) -> Result in try body(index, ownership) }
    }

    var currentOwnership: ListOwnership { indexLock.withReadLock { ownership } }

    /// Makes `batch` durable, then visible to searches, replacing stored rows with the same ids
    /// (so a batch sent twice is stored once). The caller has validated it against the model.
    func append(_ batch: EncodedBatch) throws(WorkerWriteError) {
        try write({ () throws(CollectionStoreError) in try store.append(batch) }) { () throws(IndexError) in
            try index.upsert(batch)
        }
    }

    /// Removes `ids` durably; returns how many were stored.
    func delete(_ ids: [Int64]) throws(WorkerWriteError) -> Int {
        var removed = 0
        try write({ () throws(CollectionStoreError) in try store.appendDeletion(ids) }) { () throws(IndexError) in
            removed = index.remove(ids: ids)
        }
        return removed
    }

    /// Makes a list hold exactly `export`'s entries, durably. The caller has checked ownership.
    func replace(list export: ListExport) throws(WorkerWriteError) {
        // Checked against the model before anything is written, so a bad copy changes nothing.
        do {
            var probe = IVFIndex(model: model)
            probe.enableRowLookup()
            try probe.replace(list: export.list, with: export)
        } catch {
            throw .invalid("list \(export.list): \(error)")
        }
        try write({ () throws(CollectionStoreError) in try store.appendList(export) }) { () throws(IndexError) in
            try index.replace(list: export.list, with: export)
        }
    }

    /// Writes the store, then applies the same change in memory, both under the write lock.
    private func write(_ durable: () throws(CollectionStoreError) -> Void,
                       then apply: () throws(IndexError) -> Void) throws(WorkerWriteError) {
        writeLock.lock()
        defer { writeLock.unlock() }
        guard !retired else { throw .retired(name) }
        do {
            try durable()
        } catch {
            throw .store(error)
        }
        do {
            try indexLock.withWriteLock { () throws(IndexError) in try apply() }
        } catch {
            // Validated before storing, so this means a bug; the change is durable and comes back on restart.
            throw .inconsistent("a change was stored but could not be applied to the in-memory index: \(error)")
        }
    }

    /// Rewrites the segments from the live rows and drops removed rows from memory; returns the
    /// segment bytes before and after.
    func compact() throws(WorkerWriteError) -> (before: Int, after: Int) {
        writeLock.lock()
        defer { writeLock.unlock() }
        guard !retired else { throw .retired(name) }
        let before = store.diskBytes
        let compacted = indexLock.withReadLock { index.compacted() }
        do {
            try store.rewrite(from: compacted)
        } catch {
            throw .store(error)
        }
        indexLock.withWriteLock { index = compacted }
        damagedRecords = 0
        return (before, store.diskBytes)
    }

    /// Rows removed or replaced whose space a compaction would free.
    var deadRows: Int { indexLock.withReadLock { index.rowLookup?.deadRows ?? 0 } }

    func assign(shardMapVersion: UInt64, lists: [Int32]) throws(WorkerWriteError) {
        writeLock.lock()
        defer { writeLock.unlock() }
        guard !retired else { throw .retired(name) }
        do {
            try store.assign(shardMapVersion: shardMapVersion, ownedLists: lists)
        } catch {
            throw .store(error)
        }
        let updated = ListOwnership(shardMapVersion: shardMapVersion, lists: lists, nlist: model.nlist)
        indexLock.withWriteLock { ownership = updated }
    }

    /// Retires this collection and returns its successor on `newModel`, sharing the (empty) store.
    func replacingModel(with newModel: IVFModel) throws(WorkerWriteError) -> ShardCollection {
        writeLock.lock()
        defer { writeLock.unlock() }
        guard !retired else { throw .retired(name) }
        do {
            try store.replaceModel(newModel)
        } catch {
            throw .store(error)
        }
        retired = true
        return ShardCollection(store: store, index: IVFIndex(model: newModel))
    }

    /// Retires this collection and deletes its folder; returns the bytes freed on disk and in memory.
    func drop() throws(WorkerWriteError) -> Int {
        writeLock.lock()
        defer { writeLock.unlock() }
        guard !retired else { throw .retired(name) }
        retired = true
        let memory = indexLock.withReadLock { index.memoryBytes }
        do {
            return try store.drop() + memory
        } catch {
            throw .store(error)
        }
    }

    /// Records the committed segment length (clean shutdown).
    func checkpoint() throws(WorkerWriteError) {
        writeLock.lock()
        defer { writeLock.unlock() }
        guard !retired else { return }
        do {
            try store.checkpoint()
        } catch {
            throw .store(error)
        }
    }

    struct Statistics {
        var vectors: Int
        var codeBytes: Int
        var rawBytes: Int
        var ownership: ListOwnership
    }

    var statistics: Statistics {
        indexLock.withReadLock {
            Statistics(vectors: index.liveCount,
                       codeBytes: index.memoryBytes - index.rawVectors.memoryBytes - (index.rowLookup?.memoryBytes ?? 0),
                       rawBytes: index.rawVectors.memoryBytes, ownership: ownership)
        }
    }
}

/// Why a write to a collection failed.
enum WorkerWriteError: Error {
    /// Dropped, or its model replaced, while the request was in flight.
    case retired(String)
    case store(CollectionStoreError)
    case inconsistent(String)
    /// The change does not fit the model (a bad list copy).
    case invalid(String)
}
