import numpy as np
src = "/work/shared/data/pkgdesc"
base = np.load(f"{src}/base.npy").astype(np.float32)
queries = np.load(f"{src}/queries.npy").astype(np.float32)[:2000]
rng = np.random.default_rng(5)
base *= rng.lognormal(0.0, 0.35, size=(len(base), 1)).astype(np.float32)
np.save("base.npy", base)
np.save("queries.npy", queries)
gt = np.empty((len(queries), 100), dtype=np.int64)
for s in range(0, len(queries), 500):
    scores = queries[s:s+500] @ base.T
    top = np.argpartition(-scores, 100, axis=1)[:, :100]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    gt[s:s+500] = np.take_along_axis(top, order, axis=1)
np.save("groundtruth.npy", gt)
print("ok", base.shape, queries.shape)
