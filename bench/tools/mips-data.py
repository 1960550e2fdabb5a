#!/usr/bin/env python3
"""Write inner-product (MIPS) data sets whose norms vary, in the layout peers.py and `quiver bench`
read (base.npy, queries.npy, groundtruth.npy: exact top-100 ids by inner product).

  mips-data.py scaled PKGDESC_DIR OUT_DIR [--sigma 0.35] [--seed 7]
      pkgdesc's unit-norm rows, each scaled by a log-normal norm exp(N(0, sigma^2)); queries unchanged.
  mips-data.py synth SYNTH_DIR OUT_DIR
      a folder written by shared/tools/synth.py without --normalize (base.NN.npy shards, L2 ground
      truth): concatenates the shards into base.npy and recomputes the ground truth by inner product.

Needs numpy only. Float32 output.
"""
import argparse, glob, os, sys
import numpy as np

K = 100

def ip_groundtruth(base, queries, k=K, block=1 << 16):
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for b in range(0, len(base), block):
        xb = base[b:b + block]
        S = queries @ xb.T
        kk = min(k, S.shape[1] - 1)
        I = np.argpartition(-S, kk, axis=1)[:, :k]
        cs = np.concatenate([best_s, np.take_along_axis(S, I, 1)], axis=1)
        ci = np.concatenate([best_i, I + b], axis=1)
        top = np.argpartition(-cs, k, axis=1)[:, :k]
        best_s = np.take_along_axis(cs, top, 1)
        best_i = np.take_along_axis(ci, top, 1)
    order = np.argsort(-best_s, axis=1, kind='stable')
    return np.take_along_axis(best_i, order, 1).astype(np.int32)

def write(out, base, queries):
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, 'base.npy'), base.astype(np.float32))
    np.save(os.path.join(out, 'queries.npy'), queries.astype(np.float32))
    np.save(os.path.join(out, 'groundtruth.npy'), ip_groundtruth(base, queries))
    norms = np.linalg.norm(base, axis=1)
    print(f'wrote {out}: n={len(base)} d={base.shape[1]} queries={len(queries)}; '
          f'norms min {norms.min():.3f} median {np.median(norms):.3f} max {norms.max():.3f}', file=sys.stderr)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('kind', choices=('scaled', 'synth'))
    ap.add_argument('source'); ap.add_argument('out')
    ap.add_argument('--sigma', type=float, default=0.35); ap.add_argument('--seed', type=int, default=7)
    a = ap.parse_args()
    if a.kind == 'scaled':
        base = np.load(os.path.join(a.source, 'base.npy')).astype(np.float32)
        queries = np.load(os.path.join(a.source, 'queries.npy')).astype(np.float32)
        rs = np.random.default_rng(a.seed)
        base *= np.exp(rs.normal(0.0, a.sigma, len(base))).astype(np.float32)[:, None]
    else:
        shards = sorted(glob.glob(os.path.join(a.source, 'base.*.npy')))
        base = np.concatenate([np.load(p).astype(np.float32) for p in shards])
        queries = np.load(os.path.join(a.source, 'queries.npy')).astype(np.float32)
    write(a.out, np.ascontiguousarray(base), np.ascontiguousarray(queries))

if __name__ == '__main__':
    main()
