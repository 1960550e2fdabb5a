/// Storage for Quiver: dataset readers (.npy, .fvecs, .bvecs, .ivecs), index files and the model encoding, and the worker's durable per-collection segments and manifests.
