import Foundation
import QuiverCluster
import QuiverIndex
import QuiverStorage

extension Array where Element == UInt8 {
    /// The last occurrence of `pattern`.
    func lastRange(of pattern: [UInt8]) -> Range<Int>? {
        guard pattern.count <= count else { return nil }
        var start = count - pattern.count
        while start >= 0 {
            if self[start ..< start + pattern.count].elementsEqual(pattern) { return start ..< start + pattern.count }
            start -= 1
        }
        return nil
    }
}

/// A registered worker as persisted: the identity and where to dial it.
struct WorkerEndpoint: Codable, Sendable, Equatable, Hashable {
    var id: WorkerID
    var address: String
    /// The id of the worker's data folder when last seen (nil until its first heartbeat).
    var folderID: String?
    /// Being emptied (DrainWorker): gets no new lists.
    var draining: Bool?
}

/// What `CoordinatorStore.loadAll` recovers for one collection.
struct StoredCollection: Sendable {
    var record: CollectionRecord
    var model: IVFModel?
    var shardMap: ShardMap?
    var replicas = ReplicaStates()
}

/// The coordinator's durable state under `--data-dir`:
///
///     workers.json                          registered workers
///     collections/<name>/collection.json    settings, state, versions, counts, id counter
///     collections/<name>/model-<v>.qvm      ModelCodec bytes of the serving model
///     collections/<name>/shard-map.json     the current shard map
///
/// Every file is replaced atomically (AtomicFile), and the model and shard map are written
/// before the record that names their versions, so a crash never leaves a record pointing at
/// files that do not exist.
struct CoordinatorStore: Sendable {
    let root: String

    init(root: String) throws(CoordinatorError) {
        self.root = root
        do {
            try FileManager.default.createDirectory(atPath: root + "/collections", withIntermediateDirectories: true)
        } catch {
            throw .internalError("cannot create the data directory \(root): \(error.localizedDescription)")
        }
    }

    private func directory(of collection: String) -> String { root + "/collections/" + collection }

    // MARK: - Workers

    func loadWorkers() throws(CoordinatorError) -> [WorkerEndpoint] {
        let path = root + "/workers.json"
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        return try decode([WorkerEndpoint].self, from: path)
    }

    func saveWorkers(_ workers: [WorkerEndpoint]) throws(CoordinatorError) {
        try encode(workers.sorted { $0.id < $1.id }, to: root + "/workers.json")
    }

    // MARK: - Collections

    func saveRecord(_ record: CollectionRecord) throws(CoordinatorError) {
        let directory = directory(of: record.name)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .internalError("cannot create \(directory): \(error.localizedDescription)")
        }
        try encode(record, to: directory + "/collection.json")
    }

    func saveModel(_ model: IVFModel, collection: String) throws(CoordinatorError) {
        let path = directory(of: collection) + "/model-\(model.version).qvm"
        do {
            try AtomicFile.write(ModelCodec.encode(model), to: path)
        } catch {
            throw .internalError(error.description)
        }
    }

    func saveShardMap(_ map: ShardMap, collection: String) throws(CoordinatorError) {
        try encode(map, to: directory(of: collection) + "/shard-map.json")
    }

    /// What a named load has been given and has stored (`loads/<load id>.json`).
    func loadLedger(_ load: String, collection: String) throws(CoordinatorError) -> LoadLedger? {
        let path = directory(of: collection) + "/loads/" + load + ".json"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try decode(LoadLedger.self, from: path)
    }

    func saveLedger(_ ledger: LoadLedger, load: String, collection: String) throws(CoordinatorError) {
        let folder = directory(of: collection) + "/loads"
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw .internalError("cannot create \(folder): \(error.localizedDescription)")
        }
        try encode(ledger, to: folder + "/" + load + ".json")
    }

    /// Server-side load jobs (`jobs/<id>.json`), so they outlive a restart.
    func saveJob(_ job: LoadJobRecord) throws(CoordinatorError) {
        do {
            try FileManager.default.createDirectory(atPath: root + "/jobs", withIntermediateDirectories: true)
        } catch {
            throw .internalError("cannot create \(root)/jobs: \(error.localizedDescription)")
        }
        try encode(job, to: root + "/jobs/" + job.id + ".json")
    }

    func loadJobs() throws(CoordinatorError) -> [LoadJobRecord] {
        let folder = root + "/jobs"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        var jobs: [LoadJobRecord] = []
        for name in names { jobs.append(try decode(LoadJobRecord.self, from: folder + "/" + name)) }
        return jobs
    }

    func saveReplicas(_ replicas: ReplicaStates, collection: String) throws(CoordinatorError) {
        try encode(replicas, to: directory(of: collection) + "/replicas.json")
    }

    /// Removes model files other than the serving one (older versions after a retraining).
    func pruneModels(collection: String, keeping version: UInt64) {
        let directory = directory(of: collection)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix("model-") && name.hasSuffix(".qvm") && name != "model-\(version).qvm" {
            try? FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }

    func removeCollection(_ name: String) throws(CoordinatorError) {
        let directory = directory(of: name)
        // Rename first: one atomic step decides the drop, the recursive delete may be interrupted.
        let doomed = root + "/collections/.dropped-\(name)-\(UInt32.random(in: 0 ... .max))"
        guard rename(directory, doomed) == 0 || errno == ENOENT else {
            throw .internalError("cannot remove \(directory): \(String(cString: strerror(errno)))")
        }
        try? FileManager.default.removeItem(atPath: doomed)
    }

    /// Every stored collection, with its model and shard map when trained.
    func loadAll() throws(CoordinatorError) -> [StoredCollection] {
        let base = root + "/collections"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).sorted()
        var out: [StoredCollection] = []
        for name in names {
            if name.hasPrefix(".dropped-") {
                try? FileManager.default.removeItem(atPath: base + "/" + name)
                continue
            }
            let directory = base + "/" + name
            let recordPath = directory + "/collection.json"
            guard FileManager.default.fileExists(atPath: recordPath) else { continue }
            var record = try decode(CollectionRecord.self, from: recordPath)
            var stored = StoredCollection(record: record)
            if record.modelVersion > 0 {
                let modelPath = directory + "/model-\(record.modelVersion).qvm"
                guard let bytes = FileManager.default.contents(atPath: modelPath) else {
                    throw .internalError("\(recordPath) names model \(record.modelVersion), but \(modelPath) is missing")
                }
                do {
                    stored.model = try ModelCodec.decode([UInt8](bytes))
                } catch {
                    throw .internalError("\(modelPath): \(error.description)")
                }
                stored.shardMap = try decode(ShardMap.self, from: directory + "/shard-map.json")
                if FileManager.default.fileExists(atPath: directory + "/replicas.json") {
                    stored.replicas = try decode(ReplicaStates.self, from: directory + "/replicas.json")
                }
            }
            // A training or first-load that was running when the process stopped is gone.
            if record.phase == .training {
                record.phase = record.modelVersion > 0 ? .ready : .failed
                if record.modelVersion == 0 { record.error = "training was interrupted by a coordinator restart; call Train again" }
            }
            stored.record = record
            out.append(stored)
        }
        return out
    }

    // MARK: - JSON files

    /// Every state file is JSON followed by a line `#crc32c <hex>` of the JSON bytes, so a
    /// damaged file is refused by name instead of being half-understood.
    private static let checksumMarker = Array("\n#crc32c ".utf8)

    private func encode(_ value: some Encodable, to path: String) throws(CoordinatorError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            throw .internalError("cannot encode \(path): \(error)")
        }
        let json = [UInt8](data)
        let crc = json.withUnsafeBytes { Kernels.crc32c($0) }
        do {
            try AtomicFile.write(json + Self.checksumMarker + Array(String(crc, radix: 16).utf8) + [0x0A], to: path)
        } catch {
            throw .internalError(error.description)
        }
    }

    private func decode<Value: Decodable>(_ type: Value.Type, from path: String) throws(CoordinatorError) -> Value {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .internalError("cannot read \(path)")
        }
        var bytes = [UInt8](data)
        // Files written before checksums were added have none; every later one must match.
        if let marker = bytes.lastRange(of: Self.checksumMarker) {
            let stated = String(decoding: bytes[marker.upperBound...], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let json = Array(bytes[..<marker.lowerBound])
            let crc = json.withUnsafeBytes { Kernels.crc32c($0) }
            guard UInt32(stated, radix: 16) == crc else {
                throw .internalError("\(path) is damaged: its checksum \(stated) does not match its contents (\(String(crc, radix: 16))); restore it from a backup")
            }
            bytes = json
        }
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw .internalError("\(path) is damaged: \(error)")
        }
    }
}
