#!/usr/bin/env python3
"""Checks deploy/'s files that no off-the-shelf validator covers.

- grafana/quiver.json: valid JSON, unique panel ids, every query names only metrics that Quiver
  exports (the list below, which deploy/README.md documents), no panel without a query.
- compose.yaml: parses; a coordinator and three workers that register with it under their own
  service names; every container read-only, non-root, with all capabilities dropped.
Usage: deploy/check-files.py   (needs PyYAML; deploy/validate.sh runs it)
"""
import json
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))

# Quiver's Prometheus metrics (name -> labels besides the exporter's own).
METRICS = {
    "quiver_search_duration_seconds": {"collection"},
    "quiver_search_queries_total": {"collection"},
    "quiver_rpc_requests_total": {"service", "method", "code"},
    "quiver_search_partial_total": {"collection"},
    "quiver_search_scatters_total": {"collection"},
    "quiver_worker_lists_scanned_total": {"collection"},
    "quiver_worker_codes_scanned_total": {"collection"},
    "quiver_worker_candidates_reranked_total": {"collection"},
    "quiver_load_rows_total": {"collection"},
    "quiver_load_bytes_total": {"collection"},
    "quiver_worker_vectors": {"collection"},
    "quiver_worker_bytes": {"collection", "kind"},
    "quiver_worker_lists_owned": {"collection"},
    "quiver_cluster_workers": {"health"},
    "quiver_collection_vectors": {"collection"},
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def known(name):
    if name in METRICS:
        return True
    return any(name.endswith(s) and name[: -len(s)] in METRICS for s in HISTOGRAM_SUFFIXES)


def check_dashboard(problems):
    path = os.path.join(HERE, "grafana", "quiver.json")
    with open(path, encoding="utf-8") as handle:
        dashboard = json.load(handle)
    ids = [p["id"] for p in dashboard["panels"]]
    if len(ids) != len(set(ids)):
        problems.append(f"{path}: panel ids repeat")
    used = set()
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{path}: panel '{panel['title']}' has no query")
        for target in targets:
            for name in re.findall(r"\b(quiver_[a-z_]+)\b", target["expr"]):
                used.add(name)
                if not known(name):
                    problems.append(f"{path}: panel '{panel['title']}' queries unknown metric {name}")
    for name in METRICS:
        if not any(u == name or u.startswith(name + "_") for u in used):
            problems.append(f"{path}: no panel shows {name}")
    return len(dashboard["panels"])


def check_compose(problems):
    path = os.path.join(HERE, "compose.yaml")
    with open(path, encoding="utf-8") as handle:
        compose = yaml.safe_load(handle)
    services = compose["services"]
    workers = sorted(name for name in services if name.startswith("worker-"))
    if "coordinator" not in services or len(workers) != 3:
        problems.append(f"{path}: expected a coordinator and three workers, found {sorted(services)}")
    for name, service in services.items():
        if not service.get("read_only") or service.get("user", "0").split(":")[0] in ("", "0", "root"):
            problems.append(f"{path}: {name} must run read-only as a non-root user")
        if "ALL" not in service.get("cap_drop", []):
            problems.append(f"{path}: {name} must drop all capabilities")
    for name in workers:
        args = services[name]["command"]
        if f"--advertise={name}:7701" not in args or "--coordinator=coordinator:7700" not in args:
            problems.append(f"{path}: {name} must register with coordinator:7700 and advertise {name}:7701")
    return len(services)


def main():
    problems = []
    panels = check_dashboard(problems)
    services = check_compose(problems)
    for problem in problems:
        print("error:", problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"grafana/quiver.json: {panels} panels over {len(METRICS)} metrics; compose.yaml: {services} services")


if __name__ == "__main__":
    main()
