import CoreMetrics
import GRPCCore
import QuiverCluster
import QuiverIndex
import QuiverProtocol
import QuiverStorage

/// Rows of one load batch: raw vectors and, when the caller supplied them, ids.
struct LoadBatch: Sendable {
    var vectors: Matrix
    var ids: [Int64]?
    /// The load the batch belongs to (LoadRequest.load_id), nil for an anonymous stream.
    var loadID: String? = nil
    /// Its first row within the load (within the stream when anonymous).
    var firstRow: Int = 0
    var onDuplicate: Quiver_V1_DuplicateIDs = .reject
    /// The whole load's size when the caller said (LoadRequest.expected_rows), else 0.
    var expectedRows = 0
    var rows: Int { vectors.rows }
}

/// A Load stream that failed after some of its rows were acknowledged: the caller may send
/// everything from `acknowledgedThrough` again (with the same load id, nothing is stored twice).
struct LoadStreamFailure: Error {
    let error: CoordinatorError
    /// Every row of the load before this one is acknowledged (relative to the load with a load
    /// id, to the stream without).
    let acknowledgedThrough: UInt64
}

extension Coordinator {
    /// Rows one streamed batch may carry (the message limit bounds the bytes as well).
    static let maxBatchRows = 1 << 20
    /// Batches read, assigned and ingested at once: one is read and assigned while others are
    /// encoded and stored by workers. Two left a fifth of the two cores idle during a load; three
    /// (with 8 MiB batches) loaded pkgdesc about 20% faster, four no faster again.
    static let loadConcurrency = 3

    // MARK: - Streaming load

    /// The running state of one Load stream.
    private struct StreamLoad {
        var name = ""
        var incarnation: UInt64 = 0
        var settings: CollectionSettings?
        /// Rows held back while the collection waits to train on its first load.
        var trainingBuffer: [LoadBatch]?
        var firstLoad = FirstLoadTraining(sampleRows: 0, iterations: Coordinator.defaultIterations, seed: Coordinator.defaultSeed)
        var ranges: [Quiver_V1_IdRange] = []
        var accepted = 0
        var batches = 0
        var inFlight = 0
        /// Batches ready to ingest, in stream order.
        var ready: [LoadBatch] = []
        var loadID: String?
        /// Rows of the stream so far (the next anonymous batch's first row).
        var streamRows = 0
        /// Batches started, in order, and those acknowledged, by first row.
        var started: [Int] = []
        var acknowledged = Set<Int>()
        /// The end of the stream's first row (within the load).
        var end = 0

        /// The first row not known acknowledged: every row before it is.
        var acknowledgedThrough: Int {
            started.first { !acknowledged.contains($0) } ?? end
        }
    }

    func load(_ messages: RPCAsyncSequence<Quiver_V1_LoadRequest, any Error>) async throws(LoadStreamFailure) -> Quiver_V1_LoadResponse {
        var load = StreamLoad()
        do {
            try await withThrowingTaskGroup(of: (first: Int, rows: Int).self) { group in
                for try await message in messages {
                    try await accept(message, into: &load)
                    try await drain(&load, into: &group)
                }
                if let buffer = load.trainingBuffer, !buffer.isEmpty {
                    // The stream ended before the sample filled: train on everything it sent.
                    try await trainOnFirstLoad(load.name, incarnation: load.incarnation, buffer: buffer, firstLoad: load.firstLoad)
                    load.ready = buffer
                    load.trainingBuffer = nil
                    try await drain(&load, into: &group)
                }
                while let done = try await group.next() { finished(done, in: &load) }
            }
        } catch {
            if load.trainingBuffer != nil { releaseFirstLoad(load.name, incarnation: load.incarnation) }
            let failure = CoordinatorError.wrapping(error, context: "loading \(load.name.isEmpty ? "(no collection named)" : load.name)")
            let through = load.acknowledgedThrough
            throw LoadStreamFailure(error: through > 0 ? failure.appending(" (rows before \(through) of the load are acknowledged)") : failure,
                                    acknowledgedThrough: UInt64(through))
        }
        if load.name.isEmpty {
            throw LoadStreamFailure(error: .invalidArgument("the load stream was empty; its first message must name the collection"),
                                    acknowledgedThrough: 0)
        }
        if load.trainingBuffer != nil { releaseFirstLoad(load.name, incarnation: load.incarnation) }
        var response = Quiver_V1_LoadResponse()
        response.rowsAccepted = UInt64(load.accepted)
        response.modelVersion = entries[load.name]?.record.modelVersion ?? 0
        response.assignedIds = load.ranges
        if let loadID = load.loadID, load.ranges.count > 0,
           let whole = try? loadIDs(load.name, incarnation: load.incarnation, load: loadID, rows: 0 ..< load.end) {
            // A named load resent from the middle: the ids of every row of it, not only this stream's.
            var ranges: [Quiver_V1_IdRange] = []
            var position = 0
            while position < whole.count {
                var end = position + 1
                while end < whole.count && whole[end] == whole[end - 1] + 1 { end += 1 }
                append(range: whole[position], count: end - position, to: &ranges)
                position = end
            }
            response.assignedIds = ranges
        }
        return response
    }

    /// Decodes one message; buffers it while a first-load sample fills, training once it has.
    private func accept(_ message: Quiver_V1_LoadRequest, into load: inout StreamLoad) async throws(CoordinatorError) {
        if load.name.isEmpty {
            load.name = message.collection
            let entry = try entry(load.name)
            load.incarnation = entry.incarnation
            load.settings = entry.record.settings
            if entry.record.phase == .awaitingFirstLoad {
                load.firstLoad = entry.record.firstLoad ?? load.firstLoad
                try claimTraining(load.name, incarnation: load.incarnation)
                load.trainingBuffer = []
            } else {
                _ = try serving(load.name)
            }
        } else if !message.collection.isEmpty && message.collection != load.name {
            throw .invalidArgument("batch \(load.batches) names collection \"\(message.collection)\", the stream loads \"\(load.name)\"")
        }
        if load.batches == 0 {
            if !message.loadID.isEmpty {
                guard CollectionSettings.isValidName(message.loadID) else {
                    throw .invalidArgument("load_id \"\(message.loadID.prefix(64))\" must be \(CollectionSettings.namePattern)")
                }
                load.loadID = message.loadID
            }
        } else if (message.loadID.isEmpty ? nil : message.loadID) != load.loadID {
            throw .invalidArgument("batch \(load.batches) has load_id \"\(message.loadID.prefix(64))\", the stream's first had \"\(load.loadID ?? "")\"")
        }
        var batch = try Self.decodeBatch(message.batch, dimension: load.settings!.dimension, index: load.batches)
        load.batches += 1
        guard batch.rows > 0 else { return }
        batch.loadID = load.loadID
        guard message.firstRow <= UInt64(Int64.max) - UInt64(batch.rows) else {
            throw .invalidArgument("batch \(load.batches - 1) has first_row \(message.firstRow), too large")
        }
        batch.firstRow = load.loadID == nil ? load.streamRows : Int(message.firstRow)
        batch.onDuplicate = message.onDuplicateID
        batch.expectedRows = Int(clamping: message.expectedRows)
        load.streamRows += batch.rows
        load.end = max(load.end, batch.firstRow + batch.rows)
        guard load.trainingBuffer != nil else {
            load.ready.append(batch)
            return
        }
        load.trainingBuffer!.append(batch)
        let buffered = load.trainingBuffer!.reduce(0) { $0 + $1.rows }
        guard buffered >= firstLoadSampleRows(load.settings!, load.firstLoad) else { return }
        try await trainOnFirstLoad(load.name, incarnation: load.incarnation, buffer: load.trainingBuffer!, firstLoad: load.firstLoad)
        load.ready = load.trainingBuffer!
        load.trainingBuffer = nil
    }

    /// Starts ingesting the ready batches, keeping at most `loadConcurrency` in flight.
    private func drain(_ load: inout StreamLoad, into group: inout ThrowingTaskGroup<(first: Int, rows: Int), any Error>) async throws {
        while !load.ready.isEmpty {
            let batch = load.ready.removeFirst()
            let serving = try serving(load.name)
            guard serving.incarnation == load.incarnation else {
                throw CoordinatorError.notFound("collection \"\(load.name)\" was dropped during the load")
            }
            let ids = try ids(for: batch, name: load.name, incarnation: load.incarnation, ranges: &load.ranges)
            let check = duplicateCheck(for: batch, name: load.name)
            load.started.append(batch.firstRow)
            let name = load.name
            group.addTask {
                var replaced = 0
                if let check { replaced = try await self.resolveDuplicates(ids: ids, vectors: batch.vectors, serving: serving, policy: check) }
                try await self.batchAttempted(name, incarnation: serving.incarnation, batch: batch)
                try await self.ingest(batch.vectors, ids: ids, serving: serving)
                await self.batchAcknowledged(name, incarnation: serving.incarnation, batch: batch, replaced: replaced)
                return (batch.firstRow, batch.rows)
            }
            load.inFlight += 1
            if load.inFlight >= Self.loadConcurrency, let done = try await group.next() {
                finished(done, in: &load)
                load.inFlight -= 1
            }
        }
    }

    private func finished(_ done: (first: Int, rows: Int), in load: inout StreamLoad) {
        load.accepted += done.rows
        load.acknowledged.insert(done.first)
    }

    nonisolated func firstLoadSampleRows(_ settings: CollectionSettings, _ firstLoad: FirstLoadTraining) -> Int {
        if firstLoad.sampleRows > 0 { return firstLoad.sampleRows }
        return settings.requestedNlist > 0 ? 256 * settings.requestedNlist : Self.defaultFirstLoadRows
    }

    private func trainOnFirstLoad(_ name: String, incarnation: UInt64, buffer: [LoadBatch],
                                  firstLoad: FirstLoadTraining) async throws(CoordinatorError) {
        let dimension = buffer[0].vectors.dimension
        var sample = Matrix(rows: 0, dimension: dimension, values: [])
        for batch in buffer { sample.append(contentsOf: batch.vectors) }
        do {
            let settings = try entry(name).record.settings
            let nlist = try resolveNlist(settings, totalRows: sample.rows)
            _ = try await trainAndPlace(name, incarnation: incarnation, sample: sample, nlist: nlist,
                                        iterations: firstLoad.iterations, seed: firstLoad.seed)
        } catch {
            trainingFailed(name, incarnation: incarnation, error)
            throw error
        }
    }

    /// A first load that ended (or failed) before training gives the collection back to the
    /// next first load.
    func releaseFirstLoad(_ name: String, incarnation: UInt64) {
        try? update(name, incarnation: incarnation) { entry in
            guard entry.trainingClaimed, entry.model == nil else { return }
            entry.trainingClaimed = false
            entry.record.phase = .awaitingFirstLoad
        }
    }

    /// Ids of a batch: the caller's, or a freshly reserved consecutive range.
    private func ids(for batch: LoadBatch, name: String, incarnation: UInt64,
                     ranges: inout [Quiver_V1_IdRange]) throws(CoordinatorError) -> [Int64] {
        if let ids = batch.ids {
            _ = try reserveIDs(name, incarnation: incarnation, count: 0, callerIDs: true)
            return ids
        }
        let ids: [Int64]
        if let loadID = batch.loadID {
            ids = try loadIDs(name, incarnation: incarnation, load: loadID, rows: batch.firstRow ..< batch.firstRow + batch.rows,
                              expectedRows: batch.expectedRows)
        } else {
            let first = try reserveIDs(name, incarnation: incarnation, count: batch.rows, callerIDs: false)
            ids = (0 ..< Int64(batch.rows)).map { first + $0 }
        }
        // Consecutive ids merge into ranges.
        var position = 0
        while position < ids.count {
            var end = position + 1
            while end < ids.count && ids[end] == ids[end - 1] + 1 { end += 1 }
            append(range: ids[position], count: end - position, to: &ranges)
            position = end
        }
        return ids
    }

    private func append(range first: Int64, count: Int, to ranges: inout [Quiver_V1_IdRange]) {
        if let last = ranges.last, last.first + Int64(last.count) == first {
            ranges[ranges.count - 1].count += UInt64(count)
        } else {
            var range = Quiver_V1_IdRange()
            range.first = first
            range.count = UInt64(count)
            ranges.append(range)
        }
    }

    /// Reserves `count` coordinator ids (persisted before use) or checks that caller ids are
    /// allowed; returns the first reserved id.
    func reserveIDs(_ name: String, incarnation: UInt64, count: Int, callerIDs: Bool) throws(CoordinatorError) -> Int64 {
        var first: Int64 = 0
        let found = try update(name, incarnation: incarnation) { entry throws(CoordinatorError) in
            switch (entry.record.idSource, callerIDs) {
            case (.assigned, true):
                throw .invalidArgument("collection \"\(name)\" was loaded with coordinator-assigned ids; send batches without ids")
            case (.caller, false):
                throw .invalidArgument("collection \"\(name)\" was loaded with caller ids; every batch must carry ids")
            default:
                break
            }
            entry.record.idSource = callerIDs ? .caller : .assigned
            first = entry.record.nextID
            entry.record.nextID += Int64(count)
        }
        guard found else { throw .notFound("collection \"\(name)\" was dropped during the load") }
        return first
    }

    func recordStored(_ name: String, incarnation: UInt64, rows: Int) {
        do {
            try update(name, incarnation: incarnation) { entry in
                entry.record.vectorCount = UInt64(max(0, Int64(entry.record.vectorCount) + Int64(rows)))
            }
        } catch {
            logger.error("cannot persist the vector count of \(name): \(error)")
        }
    }

    /// Prepares, assigns and routes one batch, and returns once every list it touches is stored
    /// on its write quorum of serving replicas. Replicas that missed it are marked behind (and
    /// that is persisted) before this returns, so an acknowledged write is never silently
    /// missing from a replica that searches use.
    nonisolated func ingest(_ vectors: Matrix, ids: [Int64], serving: Serving) async throws(CoordinatorError) {
        let threads = threads
        let model = serving.model
        let (prepared, assignment): (Matrix, IVFModel.Assignment)
        do {
            (prepared, assignment) = try await offload {
                var prepared = vectors
                model.prepare(&prepared)
                return (prepared, model.assign(prepared, threads: threads))
            }
        } catch {
            throw .internalError("assigning a batch of \(serving.name): \(error)")
        }
        try await gates[serving.name].shared { () throws(CoordinatorError) in
            // Routed with the shard map of this moment: a repair or a move may have changed it.
            let current = try self.serving(serving.name)
            guard current.incarnation == serving.incarnation, current.model.version == model.version else {
                throw .failedPrecondition("collection \"\(serving.name)\" was dropped or retrained during the load")
            }
            let groups: [IngestGroup]
            do throws(RoutingError) {
                groups = try LoadRouter.route(primary: assignment.primary, spill: assignment.spill, shardMap: current.shardMap)
            } catch {
                throw .internalError(error.description)
            }
            let pool = pool
            let down = pool.down
            let results = await withTaskGroup(of: (WorkerID, CoordinatorError?).self) { group in
                for routed in groups {
                    group.addTask {
                        guard !down.contains(routed.worker) else {
                            return (routed.worker, .unavailable("worker \(routed.worker) is down"))
                        }
                        do throws(CoordinatorError) {
                            try await pool.ingest(routed, vectors: prepared, ids: ids, collection: current.name,
                                                  modelVersion: model.version, shardMapVersion: current.shardMap.version)
                            return (routed.worker, nil)
                        } catch {
                            return (routed.worker, error)
                        }
                    }
                }
                var results: [(WorkerID, CoordinatorError?)] = []
                for await result in group { results.append(result) }
                return results.sorted { $0.0 < $1.0 }
            }
            if let refusal = results.compactMap(\.1).first(where: { $0.isRequestFault }) { throw refusal }
            var touched = Set<Int32>()
            for group in groups {
                touched.formUnion(group.lists)
                touched.formUnion(group.spillLists.filter { $0 >= 0 })
            }
            try await settleWrite(current, lists: touched, results: results, what: "\(vectors.rows) rows")
        }
        let collection = [("collection", serving.name)]
        Counter(label: QuiverMetrics.loadRows, dimensions: collection).increment(by: Int64(vectors.rows))
        Counter(label: QuiverMetrics.loadBytes, dimensions: collection).increment(by: Int64(vectors.values.count * 4))
    }

    /// Judges a write that went to every replica of `lists`: marks (durably) the replicas that
    /// missed it behind, and fails unless every list reached its write quorum.
    nonisolated func settleWrite(_ serving: Serving, lists: Set<Int32>, results: [(WorkerID, CoordinatorError?)],
                                 what: String) async throws(CoordinatorError) {
        let stored = Set(results.filter { $0.1 == nil }.map(\.0))
        let replicas = await replicaStates(serving.name) ?? serving.replicas
        let quorum = serving.settings.writeQuorum
        let outcome = WriteOutcome(lists: lists, stored: stored, shardMap: serving.shardMap, replicas: replicas, writeQuorum: quorum)
        if !outcome.newlyBehind.isEmpty {
            try await markBehind(serving.name, incarnation: serving.incarnation, outcome.newlyBehind,
                                 reason: "missed a write of \(what)")
        }
        guard outcome.isAcknowledged else {
            let failures = results.compactMap { worker, error in error.map { "\(worker): \($0.description)" } }
            let short = outcome.shortLists.prefix(3).map { "list \($0.list) on \($0.stored)" }.joined(separator: ", ")
            throw .unavailable("\(what) of \(serving.name) did not reach the write quorum of \(quorum) serving replicas per list "
                + "(\(short)\(outcome.shortLists.count > 3 ? ", …" : "")); nothing of it is acknowledged, send it again"
                + (failures.isEmpty ? "" : " — " + failures.joined(separator: "; ")))
        }
    }

    /// Checks one streamed batch: shape, byte length, finite values, non-negative ids.
    nonisolated static func decodeBatch(_ batch: Quiver_V1_VectorBatch, dimension: Int,
                                        index: Int) throws(CoordinatorError) -> LoadBatch {
        let matrix = batch.vectors
        let rows = Int(matrix.rows)
        guard rows <= maxBatchRows else {
            throw .resourceExhausted("batch \(index) has \(rows) rows, more than the \(maxBatchRows) allowed per message; send smaller batches (1-4 MiB work best)")
        }
        guard rows == 0 || Int(matrix.dimension) == dimension else {
            throw .invalidArgument("batch \(index) has dimension \(matrix.dimension), the collection expects \(dimension)")
        }
        guard rows > 0 else { return LoadBatch(vectors: Matrix(rows: 0, dimension: dimension, values: []), ids: nil) }
        let values: [Float]
        do {
            values = try matrix.values(field: "batch \(index) vectors")
        } catch {
            throw .invalidArgument(error.description)
        }
        if let bad = Kernels.firstNonFinite(values) {
            throw .invalidArgument("batch \(index) row \(bad / dimension) has a non-finite value \(values[bad]) at component \(bad % dimension)")
        }
        var ids: [Int64]?
        if !batch.ids.isEmpty {
            do {
                ids = try WireArrays.unpack(batch.ids, as: Int64.self, count: rows, field: "batch \(index) ids")
            } catch {
                throw .invalidArgument(error.description)
            }
            if let bad = ids!.firstIndex(where: { $0 < 0 }) {
                throw .invalidArgument("batch \(index) row \(bad) has id \(ids![bad]); ids must be non-negative")
            }
        }
        return LoadBatch(vectors: Matrix(rows: rows, dimension: dimension, values: values), ids: ids)
    }

    // MARK: - Loading server-side files

    func startLoadFiles(_ request: Quiver_V1_LoadFilesRequest) async throws(CoordinatorError) -> Quiver_V1_LoadFilesResponse {
        let name = request.collection
        let opened = try entry(name)
        try checkLoadable(opened)
        // The files are opened off the actor: a slow disk or a big file set must not stall it.
        let (files, dimension) = (files, opened.record.settings.dimension)
        let (dataset, total, callerIDs) = try await readingFiles { () throws(CoordinatorError) in
            let dataset = try files.openDataset(request.pathGlob, format: request.format, dimension: dimension)
            let total = request.maxRows > 0 ? min(dataset.count, Int(clamping: request.maxRows)) : dataset.count
            let ids = request.idPathGlob.isEmpty ? nil : try files.readIDs(request.idPathGlob, for: dataset, rows: total)
            return (dataset, total, ids)
        }
        let entry = try entry(name)
        guard entry.incarnation == opened.incarnation else { throw .notFound("collection \"\(name)\" was dropped meanwhile") }
        try checkLoadable(entry)
        switch (entry.record.idSource, callerIDs != nil) {
        case (.assigned, true):
            throw .invalidArgument("collection \"\(name)\" was loaded with coordinator-assigned ids; drop id_path_glob")
        case (.caller, false):
            throw .invalidArgument("collection \"\(name)\" was loaded with caller ids; pass id_path_glob")
        default:
            break
        }
        let batchRows = request.batchSize > 0
            ? min(Int(request.batchSize), Self.maxBatchRows)
            : max(256, (8 << 20) / (4 * dataset.dimension))  // 8 MiB of float32 rows
        jobCounter += 1
        let id = "load-\(unixMilliseconds())-\(jobCounter)-\(String(UInt32.random(in: 0 ... .max), radix: 16))"
        let record = LoadJobRecord(id: id, collection: name, pathGlob: request.pathGlob, idPathGlob: request.idPathGlob,
                                   format: request.format.rawValue, batchRows: batchRows, rowsTotal: total,
                                   filesTotal: dataset.files.count, rowsDone: 0, state: "pending", error: "",
                                   startedUnixMs: unixMilliseconds(), modelVersion: 0)
        try store.saveJob(record)
        jobRecords[id] = record
        let job = LoadJob(id: id, collection: name, rowsTotal: total, filesTotal: dataset.files.count)
        jobs[id] = job
        launch(job, record: record, dataset: dataset, callerIDs: callerIDs, incarnation: entry.incarnation)
        var response = Quiver_V1_LoadFilesResponse()
        response.loadJobID = id
        response.filesMatched = UInt32(dataset.files.count)
        return response
    }

    /// Runs a job in the background, recording how it ends.
    private func launch(_ job: LoadJob, record: LoadJobRecord, dataset: VectorDataset, callerIDs: [Int64]?, incarnation: UInt64) {
        let task = Task {
            do {
                try await self.runLoadJob(job, record: record, dataset: dataset, callerIDs: callerIDs, incarnation: incarnation)
                self.finishJob(job, error: nil)
                self.logger.info("load job \(job.id) into \(job.collection) finished: \(record.rowsTotal) rows")
            } catch {
                if self.isStopping {
                    // Left as it is on disk: the next start resumes it.
                    self.logger.info("load job \(job.id) paused by shutdown at row \(job.status.rowsDone); it resumes on restart")
                    return
                }
                self.finishJob(job, error: "\(error)")
                self.logger.error("load job \(job.id) into \(job.collection) failed: \(error)")
            }
        }
        jobTasks[job.id] = task
    }

    private func finishJob(_ job: LoadJob, error: String?) {
        job.finish(error: error)
        jobTasks[job.id] = nil
        persist(job)
    }

    /// Writes a job's progress (best effort: a failure to write only costs re-sending rows).
    func persist(_ job: LoadJob) {
        guard var record = jobRecords[job.id] else { return }
        let status = job.status
        record.rowsDone = Int(status.rowsDone)
        record.state = LoadJobRecord.name(status.state)
        record.error = status.error
        record.modelVersion = status.modelVersion
        jobRecords[job.id] = record
        do {
            try store.saveJob(record)
        } catch {
            logger.error("cannot persist load job \(job.id): \(error)")
        }
    }

    /// Resumes the jobs a previous run left unfinished: from the rows they had stored, or, when
    /// their files can no longer be read, ended with that reason.
    func resumeJobs() async {
        let records: [LoadJobRecord]
        do {
            records = try store.loadJobs()
        } catch {
            logger.error("cannot read the load jobs: \(error)")
            return
        }
        for var record in records {
            jobRecords[record.id] = record
            let job = LoadJob(resuming: record)
            jobs[record.id] = job
            guard !record.isFinished else { continue }
            guard let entry = entries[record.collection] else {
                job.finish(error: "collection \"\(record.collection)\" was dropped")
                persist(job)
                continue
            }
            if record.state == "training" || entry.record.phase != .ready {
                job.finish(error: "the coordinator restarted while the collection trained on this load's first rows; start the load again")
                persist(job)
                continue
            }
            let (files, dimension) = (files, entry.record.settings.dimension)
            let format = Quiver_V1_VectorFileFormat(rawValue: record.format) ?? .unspecified
            let rows = record.rowsTotal
            let idGlob = record.idPathGlob
            let glob = record.pathGlob
            do {
                let (dataset, ids) = try await readingFiles { () throws(CoordinatorError) in
                    let dataset = try files.openDataset(glob, format: format, dimension: dimension)
                    return (dataset, idGlob.isEmpty ? nil : try files.readIDs(idGlob, for: dataset, rows: rows))
                }
                logger.info("resuming load job \(record.id) into \(record.collection) at row \(record.rowsDone) of \(record.rowsTotal)")
                record.state = "running"
                jobRecords[record.id] = record
                launch(job, record: record, dataset: dataset, callerIDs: ids, incarnation: entry.incarnation)
            } catch {
                job.finish(error: "the coordinator restarted and cannot read the load's files again: \(error.description); "
                    + "\(record.rowsDone) rows are stored")
                persist(job)
            }
        }
    }

    /// Stops every running job at a batch boundary (shutdown): what they stored is recorded, and
    /// the next start resumes them.
    func pauseJobs(within limit: Duration = .seconds(30)) async {
        isStopping = true
        let running = Array(jobTasks.values)
        guard !running.isEmpty else { return }
        let deadline = Task {
            try? await Task.sleep(for: limit)
            for task in running { task.cancel() }
        }
        for task in running { await task.value }
        deadline.cancel()
    }

    private func checkLoadable(_ entry: Entry) throws(CoordinatorError) {
        switch entry.record.phase {
        case .ready, .awaitingFirstLoad:
            guard !entry.trainingClaimed else {
                throw .failedPrecondition("collection \"\(entry.record.name)\" is training on another first load; retry when it is READY")
            }
        default:
            throw .failedPrecondition(notReadyMessage(entry.record))
        }
    }

    func loadStatus(_ id: String) throws(CoordinatorError) -> Quiver_V1_LoadStatusResponse {
        guard let job = jobs[id] else {
            throw .notFound("no load job \"\(id.prefix(128))\"")
        }
        return job.status
    }

    /// Runs (or resumes) a job from its record's `rowsDone`. Rows get ids derived from the job
    /// (a named load), so rows sent again after a restart are stored once. A batch that misses
    /// its write quorum is retried for a while before the job fails.
    private func runLoadJob(_ job: LoadJob, record: LoadJobRecord, dataset: VectorDataset, callerIDs: [Int64]?,
                            incarnation: UInt64) async throws(CoordinatorError) {
        let name = job.collection
        let total = record.rowsTotal
        let batchRows = record.batchRows
        let entryRecord = try entry(name).record
        if entryRecord.phase == .awaitingFirstLoad {
            job.start(state: .training)
            persist(job)
            try claimTraining(name, incarnation: incarnation)
            do {
                let firstLoad = entryRecord.firstLoad ?? FirstLoadTraining(sampleRows: 0, iterations: Self.defaultIterations, seed: Self.defaultSeed)
                let nlist = try resolveNlist(entryRecord.settings, totalRows: total)
                let wanted = firstLoad.sampleRows > 0 ? firstLoad.sampleRows : 256 * nlist
                // Files allow random access, so the sample is uniform over the whole load.
                let files = files
                let sample = try await readingFiles { () throws(CoordinatorError) in
                    let prefix = total == dataset.count ? dataset : try files.prefix(of: dataset, rows: total)
                    return try files.uniformRows(of: prefix, count: wanted, seed: firstLoad.seed)
                }
                _ = try await trainAndPlace(name, incarnation: incarnation, sample: sample, nlist: nlist,
                                            iterations: firstLoad.iterations, seed: firstLoad.seed)
            } catch {
                let failure = CoordinatorError.wrapping(error, context: "training \(name) on its first load")
                trainingFailed(name, incarnation: incarnation, failure)
                throw failure
            }
        }
        let serving = try serving(name)
        guard serving.incarnation == incarnation else { throw .notFound("collection \"\(name)\" was dropped") }
        job.start(state: .running, modelVersion: serving.model.version)
        persist(job)
        _ = try reserveIDs(name, incarnation: incarnation, count: 0, callerIDs: callerIDs != nil)
        var fileEnds: [Int] = []
        for file in dataset.files { fileEnds.append((fileEnds.last ?? 0) + file.count) }
        let resumeAt = record.rowsDone
        do {
            try await withThrowingTaskGroup(of: (start: Int, rows: Int).self) { group in
                var pending = Set<Int>()
                var next = resumeAt
                func completed(_ finished: (start: Int, rows: Int)) {
                    pending.remove(finished.start)
                    let contiguous = pending.min() ?? next
                    job.advance(to: contiguous, filesDone: fileEnds.prefix { $0 <= contiguous }.count)
                    persist(job)
                }
                while next < total {
                    if job.isCancelled { throw CoordinatorError.notFound("collection \"\(name)\" was dropped") }
                    if isStopping || Task.isCancelled {
                        // Shutdown: the batches in flight finish and are recorded, no new one starts.
                        for try await finished in group { completed(finished) }
                        throw CoordinatorError.cancelled("the coordinator is shutting down")
                    }
                    let range = next ..< min(total, next + batchRows)
                    pending.insert(range.lowerBound)
                    next = range.upperBound
                    let ids = try callerIDs.map { Array($0[range]) }
                        ?? loadIDs(name, incarnation: incarnation, load: job.id, rows: range, expectedRows: total)
                    let batch = LoadBatch(vectors: Matrix(rows: 0, dimension: dataset.dimension, values: []), ids: nil,
                                          loadID: job.id, firstRow: range.lowerBound)
                    group.addTask {
                        let files = self.files
                        let vectors = try await readingFiles { () throws(CoordinatorError) in try files.readBatch(dataset, range) }
                        try await self.ingestRetrying(vectors, ids: ids, serving: serving)
                        var stored = batch
                        stored.vectors = vectors
                        await self.batchAcknowledged(name, incarnation: serving.incarnation, batch: stored, replaced: 0)
                        return (range.lowerBound, range.count)
                    }
                    if pending.count >= Self.loadConcurrency, let finished = try await group.next() { completed(finished) }
                }
                for try await finished in group { completed(finished) }
            }
        } catch {
            throw CoordinatorError.wrapping(error, context: "loading \(name)")
        }
    }

    /// `ingest`, retried with backoff (for about a minute) while the failure is one a moment
    /// can mend: a worker down or restarting, a repair holding writes back.
    nonisolated func ingestRetrying(_ vectors: Matrix, ids: [Int64], serving: Serving) async throws(CoordinatorError) {
        var delay = Duration.milliseconds(200)
        var waited = Duration.zero
        while true {
            do {
                try await ingest(vectors, ids: ids, serving: serving)
                return
            } catch {
                guard case .unavailable = error, waited < .seconds(60), !Task.isCancelled else { throw error }
                logger.warning("a batch of \(serving.name) is retried in \(delay): \(error)")
                try? await Task.sleep(for: delay)
                waited += delay
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}
