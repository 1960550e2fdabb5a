import Logging
import QuiverCluster
import QuiverIndex
import QuiverProtocol
import QuiverStorage

extension Coordinator {
    static let defaultIterations = IVFConfiguration.defaultTrainingIterations
    static let defaultSeed: UInt64 = 1
    /// Rows buffered from a streaming first load when neither nlist nor sample_rows says more.
    static let defaultFirstLoadRows = 100_000
    /// The most rows a first load may hold back in memory to train on.
    static let maxFirstLoadRows = 10_000_000

    func train(_ request: Quiver_V1_TrainRequest) async throws(CoordinatorError) -> Quiver_V1_TrainResponse {
        let name = request.collection
        let entry = try entry(name)
        guard entry.record.vectorCount == 0 else {
            throw .failedPrecondition("collection \"\(name)\" already holds \(entry.record.vectorCount) vectors; retraining a loaded collection is not supported, drop and reload it")
        }
        guard !entry.trainingClaimed, entry.record.phase != .training else {
            throw .failedPrecondition("collection \"\(name)\" is already training; wait for it to finish")
        }
        let iterations = request.iterations == 0 ? Self.defaultIterations : Int(request.iterations)
        guard iterations <= 1000 else { throw .invalidArgument("iterations \(iterations) is more than the allowed 1000") }
        let seed = request.seed == 0 ? Self.defaultSeed : request.seed
        var response = Quiver_V1_TrainResponse()
        switch request.source {
        case .firstLoad(let firstLoad):
            guard firstLoad.sampleRows <= UInt64(Self.maxFirstLoadRows) else {
                throw .invalidArgument("first_load.sample_rows \(firstLoad.sampleRows) is more than the \(Self.maxFirstLoadRows) rows a first load may buffer for training")
            }
            let sampleRows = Int(firstLoad.sampleRows)
            try update(name, incarnation: entry.incarnation) { entry in
                entry.record.phase = .awaitingFirstLoad
                entry.record.error = ""
                entry.record.firstLoad = FirstLoadTraining(sampleRows: sampleRows, iterations: iterations, seed: seed)
            }
            response.state = .awaitingFirstLoad
            return response
        case .file(let file):
            let (files, dimension) = (files, entry.record.settings.dimension)
            let dataset = try await readingFiles { () throws(CoordinatorError) in
                try files.openDataset(file.path, format: file.format, dimension: dimension)
            }
            let nlist = try resolveNlist(entry.record.settings, totalRows: dataset.count)
            var cap = 256 * nlist
            if file.maxRows > 0 { cap = min(cap, Int(clamping: file.maxRows)) }
            guard cap >= nlist else {
                throw .invalidArgument("max_rows \(file.maxRows) is fewer than the \(nlist) lists to train; allow at least \(nlist) rows")
            }
            try claimTraining(name, incarnation: entry.incarnation)
            do {
                let sampleRows = cap
                let sample = try await readingFiles { () throws(CoordinatorError) in
                    try files.uniformRows(of: dataset, count: sampleRows, seed: seed)
                }
                let model = try await trainAndPlace(name, incarnation: entry.incarnation, sample: sample, nlist: nlist,
                                                    iterations: iterations, seed: seed)
                response.modelVersion = model.version
                response.nlist = UInt32(model.nlist)
                response.trainingRows = UInt64(sample.rows)
                response.state = .ready
                return response
            } catch {
                let failure = CoordinatorError.wrapping(error, context: "training \(name)")
                trainingFailed(name, incarnation: entry.incarnation, failure)
                throw failure
            }
        case nil:
            throw .invalidArgument("TrainRequest needs a source: file (a server-side path) or first_load")
        }
    }

    /// nlist from the collection settings, or 2√n of the rows the collection will hold.
    func resolveNlist(_ settings: CollectionSettings, totalRows: Int) throws(CoordinatorError) -> Int {
        let nlist = settings.requestedNlist > 0 ? settings.requestedNlist : IVFConfiguration.defaultListCount(vectors: totalRows)
        guard totalRows >= nlist else {
            throw .invalidArgument("training needs at least nlist = \(nlist) vectors, the data has \(totalRows)")
        }
        return nlist
    }

    func claimTraining(_ name: String, incarnation: UInt64) throws(CoordinatorError) {
        let claimed = try update(name, incarnation: incarnation) { entry throws(CoordinatorError) in
            guard !entry.trainingClaimed else {
                throw .failedPrecondition("collection \"\(name)\" is already training; wait for it to finish")
            }
            entry.trainingClaimed = true
            entry.record.phase = .training
            entry.record.error = ""
        }
        guard claimed else { throw .notFound("collection \"\(name)\" was dropped") }
    }

    func trainingFailed(_ name: String, incarnation: UInt64, _ error: CoordinatorError) {
        logger.error("training \(name) failed: \(error)")
        do {
            try update(name, incarnation: incarnation) { entry in
                entry.trainingClaimed = false
                entry.record.phase = entry.model == nil ? .failed : .ready
                entry.record.error = entry.model == nil ? error.description : ""
            }
        } catch {
            logger.error("cannot record the failure of \(name): \(error)")
        }
    }

    /// Trains a model on `sample` (raw rows), places its lists, installs it on every worker and
    /// assigns the lists; the collection is READY when this returns.
    func trainAndPlace(_ name: String, incarnation: UInt64, sample: Matrix, nlist: Int, iterations: Int,
                       seed: UInt64) async throws(CoordinatorError) -> IVFModel {
        let record = try entry(name).record
        let settings = record.settings
        let workers = pool.placeable
        guard !workers.isEmpty else {
            throw .failedPrecondition(pool.ids.isEmpty ? PlacementError.noWorkers.description
                : "every registered worker (\(pool.ids.joined(separator: ", "))) is down; start them or remove the dead ones (RemoveWorker)")
        }
        guard settings.replicationFactor <= workers.count else {
            throw .failedPrecondition(PlacementError.invalidReplicationFactor(settings.replicationFactor, workers: workers.count).description)
        }
        guard sample.rows >= nlist else {
            throw .invalidArgument("training needs at least nlist = \(nlist) vectors, got \(sample.rows)")
        }
        let threads = threads
        logger.info("training \(name): \(sample.rows) rows, nlist \(nlist), m \(settings.subspaces), \(settings.bitsPerCode)-bit")
        let trained: (IVFModel, [Int], CollectionRecord.SearchDefaults?)
        let logger = logger
        do {
            trained = try await offload { () throws -> (IVFModel, [Int], CollectionRecord.SearchDefaults?) in
                let configuration = settings.indexConfiguration(nlist: nlist, iterations: iterations, seed: seed, sample: sample)
                var model = try IVFModel.train(sample: sample, configuration: configuration, threads: threads)
                // Unique across re-creations of the name, so a worker that missed a drop can
                // never serve the old collection's rows as the new one's.
                model.version = max(record.modelVersion + 1, UInt64(max(0, unixMilliseconds())))
                // Expected list sizes for placement: how the training rows (and their spills) land.
                var prepared = sample
                model.prepare(&prepared)
                let assignment = model.assign(prepared, threads: threads)
                var sizes = [Int](repeating: 0, count: model.nlist)
                for list in assignment.primary where list >= 0 { sizes[Int(list)] += 1 }
                for list in assignment.spill where list >= 0 { sizes[Int(list)] += 1 }
                return (model, sizes, Self.calibrateDefaults(model, sample: sample, settings: settings, threads: threads,
                                                             collection: name, logger: logger))
            }
        } catch let error as IndexError {
            throw .invalidArgument(error.description)
        } catch {
            throw .internalError("training \(name): \(error)")
        }
        let (model, sizes, defaults) = trained
        let map: ShardMap
        do {
            map = try ShardMap.place(version: record.shardMapVersion + 1, modelVersion: model.version, listSizes: sizes,
                                     workers: workers, replicationFactor: settings.replicationFactor)
        } catch {
            throw .failedPrecondition(error.description)
        }
        try await install(model, map: map, collection: name, on: workers)
        try store.saveModel(model, collection: name)
        try store.saveShardMap(map, collection: name)
        let committed = try update(name, incarnation: incarnation) { entry in
            entry.model = model
            entry.shardMap = map
            entry.trainingClaimed = false
            entry.record.phase = .ready
            entry.record.error = ""
            entry.record.firstLoad = nil
            entry.record.modelVersion = model.version
            entry.record.nlist = model.nlist
            entry.record.rawVectorsChosen = settings.rawPrecisionAutomatic == true ? model.configuration.rawVectors : nil
            entry.record.shardMapVersion = map.version
            entry.record.searchDefaults = defaults
        }
        guard committed else { throw .notFound("collection \"\(name)\" was dropped while it trained") }
        store.pruneModels(collection: name, keeping: model.version)
        logger.info("collection \(name) ready: model \(model.version), \(model.nlist) lists on \(workers.count) workers (shard loads \(map.shardLoads))")
        return model
    }

    /// Training rows indexed for calibration (at most; the whole sample when it is smaller), and
    /// sample queries drawn from them. The more rows, the less the re-rank depth is grown to
    /// the collection's size (`Calibration.Settings.scaled`), which overshoots: on 1M
    /// synthetic 128-d vectors calibrated on 128,000 rows, the target 0.95 landed at 0.970 with
    /// less than half the QPS of the best setting reaching 0.955. Exact neighbours of 500
    /// queries among 500,000 128-d rows are 33 GFLOP, a few seconds.
    static let calibrationRows = 500_000
    static let calibrationQueries = 500

    /// Calibrates the search defaults for the collection's recall targets from its training
    /// sample; nil (the fixed defaults then apply) when the sample is too small or it fails.
    nonisolated static func calibrateDefaults(_ model: IVFModel, sample: Matrix, settings: CollectionSettings, threads: Int,
                                              collection: String, logger: Logger) -> CollectionRecord.SearchDefaults? {
        let started = ContinuousClock.now
        // Fewer queries on small samples: each is a neighbour search over the whole sample.
        let queries = min(calibrationQueries, max(50, min(sample.rows, calibrationRows) / 20))
        do {
            let found = try Calibration.calibrate(model: model, rows: sample, targets: settings.calibratedTargets, maxRows: calibrationRows,
                                                  queries: queries, threads: threads)
            // Unmeasured costs are infinite, which JSON cannot carry; they are never read again.
            let levels = found.levels.map { level in
                var level = level
                if !level.secondsPerQuery.isFinite { level.secondsPerQuery = 0 }
                return level
            }
            logger.info("calibrated \(collection) on \(found.indexed) training rows in \(ContinuousClock.now - started): \(levels.map(\.description).joined(separator: "; "))")
            return CollectionRecord.SearchDefaults(indexedRows: found.indexed, levels: levels)
        } catch {
            logger.warning("cannot calibrate the search defaults of \(collection) (the fixed defaults apply): \(error)")
            return nil
        }
    }

    /// Ships the model to every worker, then tells each the lists it owns (possibly none).
    func install(_ model: IVFModel, map: ShardMap, collection: String, on workers: [WorkerID]) async throws(CoordinatorError) {
        let bytes = ModelCodec.encode(model)
        let pool = pool
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in workers {
                    group.addTask {
                        try await pool.installModel(bytes, version: model.version, collection: collection, on: worker)
                    }
                }
                try await group.waitForAll()
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in workers {
                    group.addTask {
                        try await pool.assignLists(map.lists(ownedBy: worker), collection: collection,
                                                   modelVersion: model.version, shardMapVersion: map.version, on: worker)
                    }
                }
                try await group.waitForAll()
            }
        } catch {
            throw CoordinatorError.wrapping(error, context: "installing \(collection)")
        }
    }
}
