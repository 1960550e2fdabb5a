/// The shard worker service: receives the model, owns inverted lists, ingests and encodes vectors, scans lists for the coordinator, and persists its data under its data folder.
enum QuiverWorkerModule {}
