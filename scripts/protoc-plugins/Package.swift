// swift-tools-version: 6.1
//
// Build-only package for the two protoc plugins Quiver uses to generate
// `Sources/QuiverProtocol/Generated/`. It is NOT part of the Quiver package graph;
// `scripts/generate-protos.sh` builds it with
//   swift build -c release --product protoc-gen-swift
//   swift build -c release --product protoc-gen-grpc-swift-2
// Versions are pinned to exactly the runtime versions in the root Package.swift, so
// generated code always matches the SwiftProtobuf / GRPCCore / GRPCProtobuf it links.
import PackageDescription

let package = Package(
    name: "QuiverProtocPlugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", exact: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
    ],
    targets: [
        // Placeholder so the manifest has a target; the products we build come from the
        // dependencies (`protoc-gen-swift` from swift-protobuf, `protoc-gen-grpc-swift-2`
        // from grpc-swift-protobuf).
        .target(
            name: "ProtocPluginsAnchor",
            dependencies: [
                .product(name: "protoc-gen-swift", package: "swift-protobuf"),
                .product(name: "protoc-gen-grpc-swift-2", package: "grpc-swift-protobuf"),
                // Only so grpc-swift-2 (which provides GRPCCodeGen to the plugin) counts as used.
                .product(name: "GRPCCodeGen", package: "grpc-swift-2"),
            ],
            path: "Anchor"
        )
    ]
)
