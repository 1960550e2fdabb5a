/// QuiverIndex: the index maths of Quiver — k-means, product quantization on residuals,
/// score-aware (anisotropic) code assignment, 4-bit FastScan, IVF with SOAR spilling, top-k,
/// re-ranking and exact search. It owns no files and no sockets: storage and services build on it.
enum QuiverIndexModule {}
