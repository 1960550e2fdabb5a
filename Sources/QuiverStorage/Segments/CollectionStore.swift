#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import QuiverIndex

/// One collection's durable state on a shard worker, in `<data-dir>/collections/<name>/`:
///
///     MANIFEST              model version, shard map version, owned lists, segments (CollectionManifest)
///     model-<version>.qvm   the installed model (ModelCodec bytes)
///     segment-<n>.qseg      append-only records of encoded batches (SegmentRecord)
///
/// A folder appears complete or not at all: it is built under a `~creating-` name and renamed
/// into place, and dropping renames it to `~dropping-` before deleting, so leftovers of either
/// step are recognisable and removed on the next start. Every change of the manifest is an
/// atomic replace; appends are synced before they return.
///
/// Not thread-safe: the owner serialises mutations (the worker holds a per-collection lock).
public final class CollectionStore {
    public struct Options: Sendable {
        /// A new segment file is started before an append would take the active one past this.
        public var segmentBytesLimit: Int

        public init(segmentBytesLimit: Int = 256 << 20) {
            self.segmentBytesLimit = segmentBytesLimit
        }
    }

    /// What `open` rebuilt from the folder.
    public struct Opened {
        public let store: CollectionStore
        /// The index built on the stored model with every committed record applied (row lookup on).
        public let index: IVFIndex
        /// Bytes of a torn final record cut off the active segment (0 after a clean stop).
        public let truncatedBytes: Int
        /// Committed records that failed their checks and were skipped: their rows are missing
        /// until the lists they touched are repaired from a replica.
        public let damage: [SegmentDamage]
    }

    public let name: String
    public let folder: String
    public private(set) var model: IVFModel
    public private(set) var manifest: CollectionManifest
    /// Rows stored in the segments.
    public private(set) var storedRows: Int
    private let options: Options
    private var active: SegmentAppender?

    private init(name: String, folder: String, model: IVFModel, manifest: CollectionManifest, storedRows: Int,
                 options: Options, active: SegmentAppender) {
        self.name = name
        self.folder = folder
        self.model = model
        self.manifest = manifest
        self.storedRows = storedRows
        self.options = options
        self.active = active
    }

    // MARK: - Folders

    public static func collectionsFolder(dataDirectory: String) -> String { dataDirectory + "/collections" }

    /// Collection names become folder names, so they are limited to a portable character set.
    public static func validate(name: String) throws(CollectionStoreError) {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x5F || byte == 0x2E || byte == 0x2D
        }
        guard allowed, (1 ... 128).contains(name.utf8.count), name != ".", name != ".." else { throw .invalidName(name) }
    }

    /// The collections under `dataDirectory`, after removing the leftovers of an interrupted
    /// create or drop (folders named `~…`, which no valid collection name can produce).
    public static func existingCollections(dataDirectory: String) throws(CollectionStoreError) -> [String] {
        let root = collectionsFolder(dataDirectory: dataDirectory)
        try FileSystem.makeDirectories(root)
        var names: [String] = []
        for entry in try FileSystem.entries(of: root) {
            let path = root + "/" + entry
            guard FileSystem.isDirectory(path) else { continue }
            if entry.hasPrefix("~") {
                try FileSystem.removeFolder(path)
            } else if (try? validate(name: entry)) != nil {
                names.append(entry)
            }
        }
        return names
    }

    /// Creates the folder of a new collection holding `model` and no rows.
    public static func create(dataDirectory: String, name: String, model: IVFModel,
                              options: Options = Options()) throws(CollectionStoreError) -> CollectionStore {
        try validate(name: name)
        let root = collectionsFolder(dataDirectory: dataDirectory)
        try FileSystem.makeDirectories(root)
        let folder = root + "/" + name
        guard !FileSystem.exists(folder) else { throw .alreadyExists(name: name) }
        let staging = root + "/~creating-" + name + "-" + String(UInt32.random(in: 0 ... .max), radix: 16)
        if mkdir(staging, 0o755) != 0 { throw FileSystem.failure(staging, "creating the folder") }

        let manifest = CollectionManifest(modelVersion: model.version,
                                          segments: [.init(number: 1, committedBytes: 0, sealed: false)],
                                          nextSegmentNumber: 2)
        try writeModel(model, folder: staging)
        try write(manifest, folder: staging)
        _ = try SegmentAppender(folder: staging, number: 1, length: 0)
        try FileSystem.syncDirectory(staging)
        try FileSystem.move(staging, to: folder)
        try FileSystem.syncDirectory(root)
        let active = try SegmentAppender(folder: folder, number: 1, length: 0)
        return CollectionStore(name: name, folder: folder, model: model, manifest: manifest, storedRows: 0,
                               options: options, active: active)
    }

    /// The model a collection folder holds (what its manifest names), without replaying segments:
    /// tools and tests compare a worker's answers with an in-process index on the same model.
    public static func installedModel(dataDirectory: String, name: String) throws(CollectionStoreError) -> IVFModel {
        let folder = collectionsFolder(dataDirectory: dataDirectory) + "/" + name
        return try readModel(folder: folder, manifest: readManifest(folder: folder))
    }

    private static func readManifest(folder: String) throws(CollectionStoreError) -> CollectionManifest {
        let manifestPath = folder + "/" + CollectionManifest.fileName
        guard FileSystem.exists(manifestPath) else { throw .manifestMissing(path: manifestPath) }
        switch CollectionManifest.decode(try FileSystem.readFile(manifestPath)) {
        case .success(let decoded): return decoded
        case .failure(let error): throw .manifestCorrupt(path: manifestPath, reason: error.reason)
        }
    }

    private static func readModel(folder: String, manifest: CollectionManifest) throws(CollectionStoreError) -> IVFModel {
        let manifestPath = folder + "/" + CollectionManifest.fileName
        let modelPath = folder + "/" + modelFileName(version: manifest.modelVersion)
        let modelBytes = try FileSystem.readFile(modelPath)
        let model: IVFModel
        do {
            model = try ModelCodec.decode(modelBytes)
        } catch {
            throw .invalidModel(path: modelPath, error)
        }
        guard model.version == manifest.modelVersion else {
            throw .manifestCorrupt(path: manifestPath, reason: "it names model version \(manifest.modelVersion) but \(modelPath) holds version \(model.version)")
        }
        return model
    }

    /// Opens a collection folder and replays its segments into an index on the stored model.
    public static func open(dataDirectory: String, name: String, options: Options = Options()) throws(CollectionStoreError) -> Opened {
        try validate(name: name)
        let folder = collectionsFolder(dataDirectory: dataDirectory) + "/" + name
        let manifest = try readManifest(folder: folder)
        let model = try readModel(folder: folder, manifest: manifest)
        try removeLeftovers(folder: folder, manifest: manifest)

        var index = IVFIndex(model: model)
        index.enableRowLookup()
        var truncated = 0
        var damage: [SegmentDamage] = []
        var activeLength = 0
        for segment in manifest.segments {
            let path = folder + "/" + SegmentFile.name(number: segment.number)
            if !segment.sealed, segment.committedBytes == 0, !FileSystem.exists(path) {
                // The manifest names a new active segment before the file is created; a stop in between leaves none.
                activeLength = 0
                continue
            }
            let replayed = try SegmentFile.replay(path: path, segment: segment) { entry, offset throws(CollectionStoreError) in
                do {
                    switch entry {
                    case .batch(let batch): try index.upsert(batch)
                    case .deletion(let ids): index.remove(ids: ids)
                    case .list(let export): try index.replace(list: export.list, with: export)
                    }
                } catch {
                    throw .corruptRecord(path: path, offset: offset, reason: "record does not fit the model: \(error)")
                }
            }
            truncated += replayed.truncatedBytes
            damage += replayed.damage
            activeLength = replayed.length
        }
        let active = try SegmentAppender(folder: folder, number: manifest.segments.last!.number, length: activeLength)
        let store = CollectionStore(name: name, folder: folder, model: model, manifest: manifest, storedRows: index.count,
                                    options: options, active: active)
        return Opened(store: store, index: index, truncatedBytes: truncated, damage: damage)
    }

    // MARK: - Changes

    /// Appends `batch` as one record and syncs it; when this returns, the rows survive a crash.
    /// Replayed, it replaces stored rows with the same ids.
    public func append(_ batch: EncodedBatch) throws(CollectionStoreError) {
        guard batch.count > 0 else { return }
        try appendRecord(SegmentRecord.encode(batch, dimension: model.dimension, halfVectors: halfVectors))
        storedRows += batch.count
    }

    /// Records the removal of `ids`, synced.
    public func appendDeletion(_ ids: [Int64]) throws(CollectionStoreError) {
        guard !ids.isEmpty else { return }
        try appendRecord(SegmentRecord.encode(deletion: ids))
    }

    /// Records that a list holds exactly `export`'s entries (a repair's copy, or an empty list
    /// this worker gave up), synced.
    public func appendList(_ export: ListExport) throws(CollectionStoreError) {
        try appendRecord(SegmentRecord.encode(list: export, codeWidth: EncodedBatch.codeWidth(model.configuration),
                                              dimension: model.dimension, halfVectors: halfVectors))
        storedRows += export.count
    }

    /// Whether records carry vectors in float16: the index keeps them so (raw vectors in float16,
    /// lists not flat), and has refused any value float16 cannot hold before they get here.
    private var halfVectors: Bool {
        model.configuration.rawVectors == .float16 && model.configuration.encoding != .flat
    }

    private func appendRecord(_ record: [UInt8]) throws(CollectionStoreError) {
        guard let current = active else { throw .unusableAfterFailedWrite(path: folder) }
        if current.length > 0, current.length + record.count > options.segmentBytesLimit {
            try rotate(from: current)
        }
        try active!.append(record)
    }

    /// Replaces every segment with a fresh one holding `index`'s lists (compaction: removed and
    /// replaced rows, and damaged records, are gone afterwards). The new segment is written and
    /// synced first, then the manifest is switched to it in one atomic replace, then the old
    /// files are deleted; a crash at any point leaves either the old set or the new one.
    public func rewrite(from index: IVFIndex) throws(CollectionStoreError) {
        let number = manifest.nextSegmentNumber
        let fresh = try SegmentAppender(folder: folder, number: number, length: 0)
        let width = EncodedBatch.codeWidth(model.configuration)
        let live = index.liveRows()
        for batch in live.batches { try fresh.append(SegmentRecord.encode(batch, dimension: model.dimension, halfVectors: halfVectors)) }
        for list in live.lists {
            try fresh.append(SegmentRecord.encode(list: list, codeWidth: width, dimension: model.dimension, halfVectors: halfVectors))
        }
        try FileSystem.syncDirectory(folder)
        let old = manifest.segments.map(\.number)
        active?.closeFile()
        active = fresh
        var next = manifest
        next.segments = [.init(number: number, committedBytes: fresh.length, sealed: false)]
        next.nextSegmentNumber = number + 1
        try commit(next)
        for segment in old { try? FileSystem.remove(folder + "/" + SegmentFile.name(number: segment)) }
        try FileSystem.syncDirectory(folder)
        storedRows = index.liveCount
    }

    /// Seals the active segment and starts the next. The manifest names the new segment before
    /// the file exists, so nothing is ever appended to a file the manifest does not list.
    private func rotate(from current: SegmentAppender) throws(CollectionStoreError) {
        var next = manifest
        next.segments[next.segments.count - 1].sealed = true
        next.segments.append(.init(number: next.nextSegmentNumber, committedBytes: 0, sealed: false))
        next.nextSegmentNumber += 1
        try commit(next)
        current.closeFile()
        // Until the new file exists appends must fail rather than land in the sealed segment.
        active = nil
        active = try SegmentAppender(folder: folder, number: next.segments.last!.number, length: 0)
        try FileSystem.syncDirectory(folder)
    }

    /// Records the lists this worker owns under `shardMapVersion`.
    public func assign(shardMapVersion: UInt64, ownedLists: [Int32]) throws(CollectionStoreError) {
        var next = manifest
        next.shardMapVersion = shardMapVersion
        next.ownedLists = ownedLists
        try commit(next)
    }

    /// Installs a different model; only while no rows are stored, since stored codes are only
    /// meaningful for the model that encoded them. List ownership is cleared with it: list ids
    /// belong to a model.
    public func replaceModel(_ newModel: IVFModel) throws(CollectionStoreError) {
        guard storedRows == 0 else {
            throw .modelNotReplaceable(name: name, installedVersion: model.version, storedRows: storedRows)
        }
        let oldVersion = model.version
        try Self.writeModel(newModel, folder: folder)
        var next = manifest
        next.modelVersion = newModel.version
        next.ownedLists = []
        try commit(next)
        model = newModel
        if oldVersion != newModel.version { try FileSystem.remove(folder + "/" + Self.modelFileName(version: oldVersion)) }
    }

    /// Records the active segment's current length as committed, so a later open holds every
    /// record up to it to the strict rule. Called on clean shutdown.
    public func checkpoint() throws(CollectionStoreError) {
        try commit(manifest)
    }

    /// Deletes the collection's folder; the store is unusable afterwards. Returns the bytes freed.
    public func drop() throws(CollectionStoreError) -> Int {
        active?.closeFile()
        active = nil
        let root = String(folder[..<folder.lastIndex(of: "/")!])
        let doomed = root + "/~dropping-" + name + "-" + String(UInt32.random(in: 0 ... .max), radix: 16)
        try FileSystem.move(folder, to: doomed)
        try FileSystem.syncDirectory(root)
        return try FileSystem.removeFolder(doomed)
    }

    /// Bytes on disk: model, manifest and segments.
    public var diskBytes: Int {
        ((try? FileSystem.entries(of: folder)) ?? []).reduce(0) { $0 + ((try? FileSystem.size(of: folder + "/" + $1)) ?? 0) }
    }

    // MARK: - Files

    private func commit(_ next: CollectionManifest) throws(CollectionStoreError) {
        var next = next
        next.generation = manifest.generation + 1
        if let active, let slot = next.segments.firstIndex(where: { $0.number == active.number }) {
            next.segments[slot].committedBytes = active.length
        }
        try Self.write(next, folder: folder)
        manifest = next
    }

    private static func write(_ manifest: CollectionManifest, folder: String) throws(CollectionStoreError) {
        let path = folder + "/" + CollectionManifest.fileName
        let file = try AtomicFileWriter(path: path) { CollectionStoreError.ioFailed(path: path, operation: "writing the manifest", reason: $0) }
        try file.append(manifest.encode())
        try file.commit()
    }

    static func modelFileName(version: UInt64) -> String { "model-\(version).qvm" }

    private static func writeModel(_ model: IVFModel, folder: String) throws(CollectionStoreError) {
        let path = folder + "/" + modelFileName(version: model.version)
        let file = try AtomicFileWriter(path: path) { CollectionStoreError.ioFailed(path: path, operation: "writing the model", reason: $0) }
        try file.append(ModelCodec.encode(model))
        try file.commit()
    }

    /// Removes what an interrupted step left behind: temporary files, models other than the
    /// manifest's, and segments the manifest does not list (never appended to, see `rotate`).
    private static func removeLeftovers(folder: String, manifest: CollectionManifest) throws(CollectionStoreError) {
        let listed = Set(manifest.segments.map(\.number))
        let model = modelFileName(version: manifest.modelVersion)
        for entry in try FileSystem.entries(of: folder) {
            let stale = entry.contains(".tmp-")
                || (entry.hasPrefix("model-") && entry.hasSuffix(".qvm") && entry != model)
                || SegmentFile.number(fromName: entry).map { !listed.contains($0) } ?? false
            if stale { try FileSystem.remove(folder + "/" + entry) }
        }
    }
}
