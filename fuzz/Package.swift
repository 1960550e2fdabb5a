// swift-tools-version: 6.1
// libFuzzer targets for everything that decodes bytes from outside: dataset files, the worker's
// segment records, manifests and model files, and protocol requests as the worker receives them.
// Built apart from the main package, with sanitizers: fuzz/run.sh (see fuzz/README.md).
import PackageDescription

let package = Package(
    name: "QuiverFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Quiver", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [
            .product(name: "QuiverIndex", package: "Quiver"), .product(name: "QuiverStorage", package: "Quiver"),
        ]),
        // .npy / .fvecs / .bvecs / .ivecs readers, vectors and ids.
        .executableTarget(name: "FuzzDatasets", dependencies: [
            "FuzzSupport", .product(name: "QuiverStorage", package: "Quiver"),
        ]),
        // A collection folder whose manifest or segment file holds the input; model and index files.
        .executableTarget(name: "FuzzStorage", dependencies: [
            "FuzzSupport", .product(name: "QuiverStorage", package: "Quiver"), .product(name: "QuiverIndex", package: "Quiver"),
        ]),
        // Protobuf-decoded requests handled by a worker holding a small model, and search settings.
        .executableTarget(name: "FuzzRequests", dependencies: [
            "FuzzSupport", .product(name: "QuiverWorker", package: "Quiver"), .product(name: "QuiverProtocol", package: "Quiver"),
            .product(name: "QuiverCluster", package: "Quiver"), .product(name: "QuiverStorage", package: "Quiver"),
        ]),
        // Writes the seed corpora under fuzz/corpus (built without sanitizers).
        .executableTarget(name: "MakeSeeds", dependencies: [
            "FuzzSupport", .product(name: "QuiverWorker", package: "Quiver"), .product(name: "QuiverProtocol", package: "Quiver"),
            .product(name: "QuiverStorage", package: "Quiver"), .product(name: "QuiverIndex", package: "Quiver"),
        ]),
    ]
)
