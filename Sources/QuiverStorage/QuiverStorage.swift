/// Storage for Quiver: dataset readers (.npy, .fvecs, .bvecs, .ivecs) and index files.
