// swift-tools-version: 6.1
import PackageDescription

// Layers, bottom up: kernels (C) → index maths → storage → cluster logic → services → client/CLI.
// A module never imports a layer above it.
let grpcCore = Target.Dependency.product(name: "GRPCCore", package: "grpc-swift-2")
let grpcTransport = Target.Dependency.product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport")
let grpcProtobuf = Target.Dependency.product(name: "GRPCProtobuf", package: "grpc-swift-protobuf")
let swiftProtobuf = Target.Dependency.product(name: "SwiftProtobuf", package: "swift-protobuf")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let metrics = Target.Dependency.product(name: "CoreMetrics", package: "swift-metrics")

let package = Package(
    name: "Quiver",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "quiver", targets: ["quiver"]),
        .library(name: "QuiverIndex", targets: ["QuiverIndex"]),
        .library(name: "QuiverStorage", targets: ["QuiverStorage"]),
        .library(name: "QuiverClient", targets: ["QuiverClient"]),
        // For the fuzzers in fuzz/, which drive the services' request handling directly.
        .library(name: "QuiverProtocol", targets: ["QuiverProtocol"]),
        .library(name: "QuiverCluster", targets: ["QuiverCluster"]),
        .library(name: "QuiverWorker", targets: ["QuiverWorker"]),
    ],
    // Exact pins: scripts/protoc-plugins/Package.swift pins the same swift-protobuf, grpc-swift-2
    // and grpc-swift-protobuf, so the generated code matches the runtime libraries.
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", exact: "2.9.2"),
        .package(url: "https://github.com/apple/swift-nio", .upToNextMinor(from: "2.101.0")),
        .package(url: "https://github.com/apple/swift-nio-http2", exact: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", exact: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", exact: "1.7.4"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        // SIMD hot loops (FastScan block scan, GEMM, float16, CRC-32C) with run-time ISA dispatch.
        .target(name: "CQuiverKernels"),
        // Index maths: k-means, PQ, anisotropic assignment, FastScan, IVF, SOAR, top-k. No I/O.
        .target(name: "QuiverIndex", dependencies: ["CQuiverKernels"]),
        // Dataset readers, index files, model encoding, worker segments and manifests.
        .target(name: "QuiverStorage", dependencies: ["QuiverIndex", "CQuiverKernels"]),
        // Generated protobuf messages and gRPC stubs (scripts/generate-protos.sh; never hand-edited).
        // Also the transports every process builds (limits, keepalive, header guard, TLS) and the
        // credentials they check.
        .target(name: "QuiverProtocol", dependencies: [
            grpcCore, grpcProtobuf, swiftProtobuf, grpcTransport,
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"), .product(name: "NIOHPACK", package: "swift-nio-http2"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"), .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOExtras", package: "swift-nio-extras"),
            .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // Transport-free cluster logic: shard maps, placement, scatter plans, result merging.
        .target(name: "QuiverCluster", dependencies: ["QuiverIndex"]),
        // The shard worker service: owns lists, ingests, scans, persists under --data-dir.
        .target(name: "QuiverWorker", dependencies: [
            "QuiverIndex", "QuiverStorage", "QuiverCluster", "QuiverProtocol", grpcCore, grpcTransport, logging, metrics,
        ]),
        // The coordinator service: collections, training, placement, loading, scatter/gather search.
        .target(name: "QuiverCoordinator", dependencies: [
            "QuiverIndex", "QuiverStorage", "QuiverCluster", "QuiverProtocol", grpcCore, grpcTransport, logging, metrics,
        ]),
        // The Swift client library (the CLI uses it too).
        .target(name: "QuiverClient", dependencies: ["QuiverProtocol", grpcCore, grpcTransport]),
        .executableTarget(
            name: "quiver",
            dependencies: [
                "QuiverIndex", "QuiverStorage", "QuiverClient", "QuiverWorker", "QuiverCoordinator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), logging,
            ]
        ),
        .testTarget(name: "CQuiverKernelsTests", dependencies: ["CQuiverKernels"]),
        .testTarget(name: "QuiverIndexTests", dependencies: ["QuiverIndex", "CQuiverKernels"]),
        .testTarget(name: "QuiverStorageTests", dependencies: ["QuiverStorage", "QuiverIndex"]),
        .testTarget(name: "QuiverProtocolTests", dependencies: [
            "QuiverProtocol", swiftProtobuf, grpcCore,
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOExtras", package: "swift-nio-extras"),
        ]),
        .testTarget(name: "QuiverClusterTests", dependencies: ["QuiverCluster", "QuiverIndex"]),
        .testTarget(name: "QuiverWorkerTests", dependencies: ["QuiverWorker", "QuiverStorage", "QuiverIndex", "QuiverProtocol", grpcTransport]),
        // Starts real coordinator and worker processes on loopback.
        .testTarget(name: "QuiverEndToEndTests", dependencies: [
            "QuiverClient", "QuiverCoordinator", "QuiverIndex", "QuiverStorage", "QuiverProtocol", grpcCore, grpcTransport, swiftProtobuf,
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"), .product(name: "NIOHPACK", package: "swift-nio-http2"),
        ]),
    ]
)
