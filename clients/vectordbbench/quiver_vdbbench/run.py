"""Runs VectorDBBench's performance case on a custom dataset against Quiver.

    python -m quiver_vdbbench.run --data data/sample --quiver-bin .build/release/quiver \
        --workers 2 --k 100 --concurrency 1,2,4 --duration 30 --out bench/results/vectordbbench-sample.json

Steps: writes the dataset in VectorDBBench's custom layout (train/test/neighbors parquet), starts
a local cluster from --quiver-bin (or uses --coordinator), and runs VectorDBBench's CaseRunner
(its own insert, optimize, serial-search and concurrent-search runners, recall and latency
computation) with QuiverVectorDB as the database. Prints and writes VectorDBBench's Metric.
Every stage is bounded: the load and optimize by the case's timeouts, each concurrency level by
--duration, the whole run by --timeout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import signal
import sys
import time
import uuid

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(HERE))
# VectorDBBench starts its search and insert workers with "spawn": they import this package.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (HERE, os.environ.get("PYTHONPATH", "")) if p)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="VectorDBBench performance case against Quiver")
    parser.add_argument("--data", default=os.path.join(REPO, "data", "sample"),
                        help="folder with base.npy, queries.npy, groundtruth.npy (default data/sample)")
    parser.add_argument("--name", default=None, help="dataset name in the report (default: the folder's name)")
    parser.add_argument("--work", default=os.path.join(REPO, "bench", "tmp", "vectordbbench"),
                        help="where the parquet dataset and VectorDBBench's files go")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--quiver-bin", default=os.environ.get("QUIVER_BIN"), help="start a local cluster from this binary")
    target.add_argument("--coordinator", help="use a running cluster at HOST:PORT instead")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="--threads of each started process")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--queries", type=int, default=None, help="use only the first N queries")
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--duration", type=int, default=30, help="seconds per concurrency level")
    parser.add_argument("--nlist", type=int, default=0)
    parser.add_argument("--search", default="default",
                        help="comma-separated search settings NPROBE:REORDER_K ('default' = the collection's); "
                             "the first runs after the load, the others search the same collection")
    parser.add_argument("--raw", default="float32", choices=["float32", "float16", "none"])
    parser.add_argument("--timeout", type=int, default=3600, help="seconds for the whole run")
    parser.add_argument("--out", default=None, help="write the metric and settings as JSON here")
    args = parser.parse_args(argv)
    if not args.coordinator and not args.quiver_bin:
        parser.error("give --quiver-bin (or $QUIVER_BIN) or --coordinator")

    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError(f"run exceeded {args.timeout} s")))
    signal.alarm(args.timeout)

    from vectordb_bench.backend.assembler import Assembler
    from vectordb_bench.backend.cases import CaseType
    from vectordb_bench.backend.clients import DB
    from vectordb_bench.backend.data_source import DatasetSource
    from vectordb_bench.models import ALL_TASK_STAGES, CaseConfig, ConcurrencySearchConfig, TaskConfig, TaskStage

    from quiver.local import LocalCluster
    from quiver_vdbbench.case_runner import QuiverCaseRunner
    from quiver_vdbbench.client import QuiverConfig, QuiverIndexConfig
    from quiver_vdbbench.dataset import write_custom_dataset

    name = args.name or os.path.basename(os.path.abspath(args.data))
    dataset_dir = os.path.join(args.work, name)
    started = time.monotonic()
    shape = write_custom_dataset(args.data, dataset_dir, queries=args.queries)
    print(f"dataset {name}: {shape['size']} x {shape['dim']}, {shape['queries']} queries -> {dataset_dir} "
          f"({time.monotonic() - started:.1f} s)", flush=True)

    cluster = None
    cluster_root = os.path.join(args.work, "cluster-" + uuid.uuid4().hex[:8])
    try:
        if args.coordinator:
            address = args.coordinator
        else:
            cluster = LocalCluster(args.quiver_bin, workers=args.workers, threads=args.threads,
                                   root=cluster_root)
            address = cluster.address
            print(f"cluster: coordinator {address}, {args.workers} workers, binary {args.quiver_bin}", flush=True)
        settings = [_parse_setting(text) for text in args.search.split(",")]
        runs = []
        for index, (nprobe, reorder_k) in enumerate(settings):
            first = index == 0
            index_config = QuiverIndexConfig(nlist=args.nlist, raw=args.raw, train_rows=shape["size"],
                                             nprobe=nprobe, reorder_k=reorder_k)
            task = TaskConfig(
                # The DB member is a placeholder VectorDBBench needs for its bookkeeping;
                # QuiverCaseRunner.init_db decides which client runs.
                db=DB.Test,
                db_config=QuiverConfig(address=address, db_label=f"quiver-{args.workers}w"),
                db_case_config=index_config,
                case_config=CaseConfig(
                    case_id=CaseType.PerformanceCustomDataset,
                    k=args.k,
                    concurrency_search_config=ConcurrencySearchConfig(
                        num_concurrency=[int(c) for c in args.concurrency.split(",")],
                        concurrency_duration=args.duration,
                        concurrency_timeout=args.duration * 4 + 60,
                    ),
                    custom_case={
                        "name": f"Quiver {name}",
                        "description": f"{name} from {args.data}",
                        "load_timeout": args.timeout,
                        "optimize_timeout": args.timeout,
                        "dataset_config": {
                            "name": name, "dir": dataset_dir, "size": shape["size"], "dim": shape["dim"],
                            "metric_type": "COSINE", "file_count": 1, "with_gt": True,
                        },
                    },
                ),
                stages=ALL_TASK_STAGES if first else [TaskStage.SEARCH_SERIAL, TaskStage.SEARCH_CONCURRENT],
                # One insert call with every row: the collection trains on the whole first load.
                load_concurrency=1,
                insert_batch_size=shape["size"],
            )
            assembled = Assembler.assemble(uuid.uuid4().hex, task, DatasetSource.S3)
            runner = QuiverCaseRunner(collection_name=f"vdbbench_{name}".replace("-", "_"),
                                      **{field: getattr(assembled, field) for field in
                                         ("run_id", "config", "ca", "status", "dataset_source")})
            metric = dataclasses.asdict(runner.run(drop_old=first))
            runs.append({"nprobe": nprobe, "reorder_k": reorder_k, "metric": metric})
            _print_metric(metric, args.k, nprobe, reorder_k)
    finally:
        if cluster is not None:
            cluster.close()
            shutil.rmtree(cluster_root, ignore_errors=True)
        signal.alarm(0)

    result = {
        "dataset": {"name": name, "path": _shown_path(args.data), **shape},
        "settings": {"k": args.k, "workers": args.workers, "threads": args.threads, "nlist": args.nlist,
                     "raw": args.raw, "concurrency": args.concurrency, "duration_s": args.duration,
                     "binary": args.quiver_bin, "coordinator": args.coordinator},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "runs": runs,
    }
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, default=str)
            handle.write("\n")
        print(f"wrote {args.out}")
    return 0


def _shown_path(path: str) -> str:
    """A path relative to the repository when it lies inside it (results are committed)."""
    absolute = os.path.abspath(path)
    return os.path.relpath(absolute, REPO) if absolute.startswith(REPO + os.sep) else absolute


def _parse_setting(text: str):
    """(nprobe, reorder_k) from 'NPROBE:REORDER_K'; None for the collection's default."""
    text = text.strip()
    if text == "default":
        return None, None
    nprobe, _, reorder = text.partition(":")
    return (int(nprobe) if nprobe else None), (int(reorder) if reorder else None)


def _print_metric(m: dict, k: int, nprobe, reorder_k) -> None:
    setting = f"nprobe {nprobe or 'default'}, reorder_k {reorder_k if reorder_k is not None else 'default'}"
    load = (f"load_duration {m['load_duration']:.1f} s (insert {m['insert_duration']:.1f} s + optimize "
            f"{m['optimize_duration']:.1f} s); " if m["load_duration"] else "")
    print(f"[{setting}] {load}recall@{k} {m['recall']:.4f}; ndcg {m['ndcg']:.4f}; "
          f"serial p99 {m['serial_latency_p99'] * 1000:.2f} ms, p95 {m['serial_latency_p95'] * 1000:.2f} ms, "
          f"p50 {m['serial_latency_p50'] * 1000:.2f} ms; max QPS {m['qps']:.1f}", flush=True)
    for conc, qps, p99 in zip(m["conc_num_list"], m["conc_qps_list"], m["conc_latency_p99_list"]):
        print(f"  concurrency {conc}: {qps:.1f} QPS, p99 {p99 * 1000:.2f} ms", flush=True)


if __name__ == "__main__":
    sys.exit(main())
