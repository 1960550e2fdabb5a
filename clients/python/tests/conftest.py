"""Fixtures: a real local Quiver cluster (one coordinator, two workers) from the built binary.

The binary is $QUIVER_BIN, else <repo>/.build/debug/quiver, else <repo>/.build/release/quiver.
Every process listens on 127.0.0.1 with an ephemeral port, keeps its data in a temporary folder
and is stopped by pid when the session ends (quiver.local.LocalCluster).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quiver.local import LocalCluster, find_binary

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    binary = find_binary(REPO)
    if binary is None:
        pytest.skip(f"no quiver binary: set QUIVER_BIN or build {REPO}/.build/debug/quiver (swift build --product quiver)")
    cluster = LocalCluster(binary, workers=2, root=tmp_path_factory.mktemp("cluster"), threads=1)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def client(cluster):
    with cluster.client(timeout=120.0) as c:
        yield c


@pytest.fixture
def collection_name(request):
    """A collection name unique to the test."""
    return "t_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:100]
