// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Quiver",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "quiver", targets: ["quiver"]),
        .library(name: "QuiverIndex", targets: ["QuiverIndex"]),
        .library(name: "QuiverStorage", targets: ["QuiverStorage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        // SIMD hot loops (FastScan block scan, float kernels, CRC32C) with run-time ISA dispatch.
        .target(name: "CQuiverKernels"),
        // Index maths: k-means, PQ, anisotropic assignment, FastScan, IVF, SOAR, top-k. No I/O.
        .target(name: "QuiverIndex", dependencies: ["CQuiverKernels"]),
        // Dataset readers (.npy, .fvecs, .bvecs, .ivecs) and index files.
        .target(name: "QuiverStorage", dependencies: ["QuiverIndex", "CQuiverKernels"]),
        .executableTarget(
            name: "quiver",
            dependencies: [
                "QuiverIndex", "QuiverStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "CQuiverKernelsTests", dependencies: ["CQuiverKernels"]),
        .testTarget(name: "QuiverIndexTests", dependencies: ["QuiverIndex", "CQuiverKernels"]),
        .testTarget(name: "QuiverStorageTests", dependencies: ["QuiverStorage", "QuiverIndex"]),
    ]
)
