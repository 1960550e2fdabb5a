/// QuiverProtocol: generated `quiver.v1` protobuf messages and gRPC stubs (see proto/quiver/v1/); regenerate with scripts/generate-protos.sh, never edit Generated/ by hand.
