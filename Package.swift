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

// MARK: - QuiverProtocol (gRPC wire protocol; branch `proto`)
// Kept as a separate appended block so it merges cleanly with edits to the targets above.
// Versions are exact pins; scripts/protoc-plugins/Package.swift must pin the same
// swift-protobuf / grpc-swift-2 / grpc-swift-protobuf versions (the plugins that generate
// Sources/QuiverProtocol/Generated/ must match the runtime libraries).
package.dependencies += [
    .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    .package(url: "https://github.com/grpc/grpc-swift-2", exact: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
    // Transport for the coordinator / worker executables (product GRPCNIOTransportHTTP2).
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport", exact: "2.9.2"),
    .package(url: "https://github.com/apple/swift-nio", .upToNextMinor(from: "2.101.0")),
]
package.targets += [
    // Generated protobuf messages + gRPC client/server stubs for proto/quiver/v1/*.proto.
    // Regenerate with scripts/generate-protos.sh; CI checks freshness with scripts/check-protos.sh.
    .target(
        name: "QuiverProtocol",
        dependencies: [
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]
    ),
    .testTarget(
        name: "QuiverProtocolTests",
        dependencies: [
            "QuiverProtocol",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]
    ),
]
