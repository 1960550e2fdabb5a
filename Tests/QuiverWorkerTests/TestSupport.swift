import Foundation
import QuiverIndex
import QuiverStorage

/// A fresh directory under the system temp dir, removed when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/quiver-worker-tests-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let created else { throw CocoaError(.fileWriteUnknown) }
        path = String(cString: created)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Small clustered data and models, sized so that tests stay fast in debug builds.
enum Fixtures {
    static let dimension = 16
    static let nlist = 8

    /// `rows` vectors around `nlist` well-separated centres.
    static func vectors(rows: Int, seed: UInt64) -> Matrix {
        var generator = SeededGenerator(seed: seed)
        var centres = Matrix(rows: nlist, dimension: dimension)
        for i in centres.values.indices { centres.values[i] = Float.random(in: -4 ... 4, using: &generator) }
        var data = Matrix(rows: rows, dimension: dimension)
        for row in 0 ..< rows {
            let centre = row % nlist
            for j in 0 ..< dimension {
                data.values[row * dimension + j] = centres.values[centre * dimension + j] + Float.random(in: -1 ... 1, using: &generator)
            }
        }
        return data
    }

    static func model(version: UInt64 = 1, metric: Metric = .l2, spill: Bool = true,
                      raw: RawVectorPrecision = .float32) throws -> IVFModel {
        let configuration = IVFConfiguration(dimension: dimension, metric: metric, nlist: nlist, encoding: .fastScan,
                                             spillLambda: spill ? 1 : nil, rawVectors: raw, trainingIterations: 8)
        let trained = try IVFModel.train(sample: vectors(rows: 400, seed: 7), configuration: configuration)
        return IVFModel(configuration: trained.configuration, centroids: trained.centroids, quantizer: trained.quantizer,
                        version: version)
    }

    /// `rows` encoded rows with ids starting at `firstID`, lists assigned by the model.
    static func batch(_ model: IVFModel, rows: Int, firstID: Int64, seed: UInt64) throws -> EncodedBatch {
        let data = vectors(rows: rows, seed: seed)
        return try IVFIndex(model: model).encode(prepared: data, ids: (0 ..< Int64(rows)).map { firstID + $0 },
                                                 assignment: model.assign(data))
    }
}

extension IVFIndex {
    /// Everything stored, for comparing indexes rebuilt from disk with the original.
    var storedState: [String] {
        [String(describing: lists), String(describing: externalIDs), String(describing: rawVectors)]
    }
}
