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

/// The coordinator's durable state, as keys of a `MetadataBackend` (files under `--data-dir`,
/// or etcd):
///
///     workers.json                          registered workers
///     collections/<name>/collection.json    settings, state, versions, counts, id counter
///     collections/<name>/model-<v>.qvm      ModelCodec bytes of the serving model
///     collections/<name>/shard-map.json     the current shard map
///     collections/<name>/replicas.json      replicas behind, lists being released
///     collections/<name>/loads/<id>.json    what each named load stored
///     jobs/<id>.json                        server-side load jobs
///
/// Every key is replaced atomically, and the model and shard map are written before the record
/// that names their versions, so a crash never leaves a record pointing at what does not exist.
struct CoordinatorStore: Sendable {
    let backend: any MetadataBackend

    init(backend: any MetadataBackend) {
        self.backend = backend
    }

    private func directory(of collection: String) -> String { "collections/" + collection }

    // MARK: - Workers

    func loadWorkers() throws(CoordinatorError) -> [WorkerEndpoint] {
        try decode([WorkerEndpoint].self, from: "workers.json") ?? []
    }

    func saveWorkers(_ workers: [WorkerEndpoint]) throws(CoordinatorError) {
        try encode(workers.sorted { $0.id < $1.id }, to: "workers.json")
    }

    // MARK: - Collections

    func saveRecord(_ record: CollectionRecord) throws(CoordinatorError) {
        try encode(record, to: directory(of: record.name) + "/collection.json")
    }

    func saveModel(_ model: IVFModel, collection: String) throws(CoordinatorError) {
        try backend.write(directory(of: collection) + "/model-\(model.version).qvm", ModelCodec.encode(model))
    }

    func saveShardMap(_ map: ShardMap, collection: String) throws(CoordinatorError) {
        try encode(map, to: directory(of: collection) + "/shard-map.json")
    }

    /// What a named load has been given and has stored.
    func loadLedger(_ load: String, collection: String) throws(CoordinatorError) -> LoadLedger? {
        try decode(LoadLedger.self, from: directory(of: collection) + "/loads/" + load + ".json")
    }

    func saveLedger(_ ledger: LoadLedger, load: String, collection: String) throws(CoordinatorError) {
        try encode(ledger, to: directory(of: collection) + "/loads/" + load + ".json")
    }

    /// Server-side load jobs, so they outlive a restart.
    func saveJob(_ job: LoadJobRecord) throws(CoordinatorError) {
        try encode(job, to: "jobs/" + job.id + ".json")
    }

    func loadJobs() throws(CoordinatorError) -> [LoadJobRecord] {
        var jobs: [LoadJobRecord] = []
        for name in try backend.children("jobs/") where name.hasSuffix(".json") {
            if let job = try decode(LoadJobRecord.self, from: "jobs/" + name) { jobs.append(job) }
        }
        return jobs
    }

    func saveReplicas(_ replicas: ReplicaStates, collection: String) throws(CoordinatorError) {
        try encode(replicas, to: directory(of: collection) + "/replicas.json")
    }

    /// Removes models other than the serving one (older versions after a retraining).
    func pruneModels(collection: String, keeping version: UInt64) {
        let directory = directory(of: collection)
        for name in (try? backend.children(directory + "/")) ?? []
        where name.hasPrefix("model-") && name.hasSuffix(".qvm") && name != "model-\(version).qvm" {
            try? backend.remove(directory + "/" + name)
        }
    }

    func removeCollection(_ name: String) throws(CoordinatorError) {
        try backend.removeTree(directory(of: name) + "/")
    }

    /// Every stored collection, with its model and shard map when trained (`reusing` models
    /// already decoded, by collection, when their version is the stored one). `recovering`:
    /// read by the coordinator that now leads, so a training recorded as running is over.
    func loadAll(reusing models: [String: IVFModel] = [:], recovering: Bool = true) throws(CoordinatorError) -> [StoredCollection] {
        var out: [StoredCollection] = []
        for name in try backend.children("collections/") {
            let directory = directory(of: name)
            let recordKey = directory + "/collection.json"
            guard var record = try decode(CollectionRecord.self, from: recordKey) else { continue }
            var stored = StoredCollection(record: record)
            if record.modelVersion > 0, let known = models[name], known.version == record.modelVersion {
                stored.model = known
                guard let map = try decode(ShardMap.self, from: directory + "/shard-map.json") else {
                    throw .internalError("\(backend.describe(recordKey)) names model \(record.modelVersion), but its shard map is missing")
                }
                stored.shardMap = map
                stored.replicas = try decode(ReplicaStates.self, from: directory + "/replicas.json") ?? ReplicaStates()
            } else if record.modelVersion > 0 {
                let modelKey = directory + "/model-\(record.modelVersion).qvm"
                guard let bytes = try backend.read(modelKey) else {
                    throw .internalError("\(backend.describe(recordKey)) names model \(record.modelVersion), but \(backend.describe(modelKey)) is missing")
                }
                do {
                    stored.model = try ModelCodec.decode(bytes)
                } catch {
                    throw .internalError("\(backend.describe(modelKey)): \(error.description)")
                }
                guard let map = try decode(ShardMap.self, from: directory + "/shard-map.json") else {
                    throw .internalError("\(backend.describe(recordKey)) names model \(record.modelVersion), but its shard map is missing")
                }
                stored.shardMap = map
                stored.replicas = try decode(ReplicaStates.self, from: directory + "/replicas.json") ?? ReplicaStates()
            }
            // A training or first-load that was running when the process stopped is gone.
            if recovering && record.phase == .training {
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

    private func encode(_ value: some Encodable, to key: String) throws(CoordinatorError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            throw .internalError("cannot encode \(backend.describe(key)): \(error)")
        }
        let json = [UInt8](data)
        let crc = json.withUnsafeBytes { Kernels.crc32c($0) }
        try backend.write(key, json + Self.checksumMarker + Array(String(crc, radix: 16).utf8) + [0x0A])
    }

    /// The value under `key`; nil when there is none.
    private func decode<Value: Decodable>(_ type: Value.Type, from key: String) throws(CoordinatorError) -> Value? {
        guard var bytes = try backend.read(key) else { return nil }
        let path = backend.describe(key)
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
