import GRPCCore
import QuiverProtocol

/// What a user sets when creating a collection; zero values let the cluster choose.
public struct CollectionSettings: Sendable {
    public var name: String
    public var dimension: Int
    public var metric: Quiver_V1_Metric
    /// 0: chosen from the data size at training time (2·√n).
    public var nlist: Int = 0
    /// 0: d/2 subspaces.
    public var subspaces: Int = 0
    public var bitsPerCode: Int = 4
    /// 0: the default (0.1 for inner product and cosine, off for L2); negative: off.
    public var anisotropicThreshold: Float = 0
    public var storeRawVectors = true
    /// Unspecified: chosen at training, float16 unless the data needs float32.
    public var rawPrecision: Quiver_V1_VectorPrecision = .unspecified
    public var replicationFactor = 1
    /// Replicas that must store a write before it is acknowledged; 0: a majority.
    public var writeQuorum = 0
    /// recall@10 a search without tuning knobs aims for; 0: 0.95.
    public var recallTarget: Double = 0

    public init(name: String, dimension: Int, metric: Quiver_V1_Metric) {
        self.name = name
        self.dimension = dimension
        self.metric = metric
    }

    var message: Quiver_V1_CollectionConfig {
        var config = Quiver_V1_CollectionConfig()
        config.name = name
        config.dimension = UInt32(clamping: dimension)
        config.metric = metric
        config.nlist = UInt32(clamping: nlist)
        config.pqM = UInt32(clamping: subspaces)
        config.pqNbits = UInt32(clamping: bitsPerCode)
        config.anisotropicThreshold = anisotropicThreshold
        config.storeRawVectors = storeRawVectors
        config.rawVectorPrecision = rawPrecision
        config.replicationFactor = UInt32(clamping: replicationFactor)
        config.writeQuorum = UInt32(clamping: writeQuorum)
        config.recallTarget = Float(recallTarget)
        return config
    }
}

extension QuiverClient {
    public func createCollection(_ settings: CollectionSettings) async throws(QuiverClientError) -> Quiver_V1_CollectionInfo {
        var request = Quiver_V1_CreateCollectionRequest()
        request.config = settings.message
        return try await call { try await coordinator.createCollection(request, metadata: metadata, options: options).collection }
    }

    public func describeCollection(_ name: String) async throws(QuiverClientError) -> Quiver_V1_CollectionInfo {
        var request = Quiver_V1_DescribeCollectionRequest()
        request.collection = name
        return try await call { try await coordinator.describeCollection(request, metadata: metadata, options: options).collection }
    }

    public func listCollections() async throws(QuiverClientError) -> [Quiver_V1_CollectionInfo] {
        try await call { try await coordinator.listCollections(Quiver_V1_ListCollectionsRequest(), metadata: metadata, options: options).collections }
    }

    @discardableResult
    public func dropCollection(_ name: String, ifExists: Bool = false) async throws(QuiverClientError) -> Bool {
        var request = Quiver_V1_DropCollectionRequest()
        request.collection = name
        request.ifExists = ifExists
        return try await call { try await coordinator.dropCollection(request, metadata: metadata, options: options).existed }
    }

    /// Trains from a file the coordinator can read (glob allowed), sampling at most `maxRows`.
    public func train(_ collection: String, fromFile path: String, maxRows: Int = 0, seed: UInt64 = 0) async throws(QuiverClientError) -> Quiver_V1_TrainResponse {
        var request = Quiver_V1_TrainRequest()
        request.collection = collection
        var file = Quiver_V1_TrainFromFile()
        file.path = path
        file.maxRows = UInt64(max(0, maxRows))
        request.file = file
        request.seed = seed
        return try await call { try await coordinator.train(request, metadata: metadata, options: options) }
    }

    /// Asks the coordinator to train on a sample of the first load (`sampleRows`, 0: its default).
    public func trainOnFirstLoad(_ collection: String, sampleRows: Int = 0) async throws(QuiverClientError) -> Quiver_V1_TrainResponse {
        var request = Quiver_V1_TrainRequest()
        request.collection = collection
        var firstLoad = Quiver_V1_TrainFromFirstLoad()
        firstLoad.sampleRows = UInt64(max(0, sampleRows))
        request.firstLoad = firstLoad
        return try await call { try await coordinator.train(request, metadata: metadata, options: options) }
    }

    public func clusterStatus() async throws(QuiverClientError) -> Quiver_V1_ClusterStatusResponse {
        try await call { try await coordinator.clusterStatus(Quiver_V1_ClusterStatusRequest(), metadata: metadata, options: options) }
    }

    /// Forgets a worker (admin). Refused while it still holds lists.
    public func removeWorker(_ workerID: String) async throws(QuiverClientError) -> Int {
        var request = Quiver_V1_RemoveWorkerRequest()
        request.workerID = workerID
        return try await call { Int(try await coordinator.removeWorker(request, metadata: metadata, options: options).workersKnown) }
    }

    /// Removes vectors by id; returns how many were stored.
    @discardableResult
    public func delete(_ collection: String, ids: [Int64]) async throws(QuiverClientError) -> Int {
        var request = Quiver_V1_DeleteRequest()
        request.collection = collection
        request.ids = WireArrays.pack(ids)
        return try await call { Int(try await coordinator.delete(request, metadata: metadata, options: options).removed) }
    }

    /// Moves every list off a worker (admin); returns the lists moving.
    @discardableResult
    public func drainWorker(_ workerID: String) async throws(QuiverClientError) -> Int {
        var request = Quiver_V1_DrainWorkerRequest()
        request.workerID = workerID
        return try await call { Int(try await coordinator.drainWorker(request, metadata: metadata, options: options).listsMoving) }
    }
}
