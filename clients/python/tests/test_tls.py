"""TLS end to end: a cluster started with `quiver certs` certificates (where the binary has them)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import quiver
from quiver.local import LocalCluster


@pytest.fixture(scope="module")
def tls_cluster(cluster, tmp_path_factory):
    """A one-worker cluster with mutual TLS on every hop; yields (cluster, CA path)."""
    if "--tls-cert" not in cluster.coordinator_help:
        pytest.skip("this quiver binary has no --tls-cert")
    root = tmp_path_factory.mktemp("tls")
    certs = root / "certs"
    made = subprocess.run([str(cluster.binary), "certs", "--out", str(certs)], capture_output=True, text=True, timeout=120)
    if made.returncode != 0:
        pytest.skip(f"quiver certs failed: {made.stderr.strip()[:200]}")

    def flags(role):
        return ["--tls-cert", str(certs / f"{role}.pem"), "--tls-key", str(certs / f"{role}-key.pem"),
                "--tls-ca", str(certs / "ca.pem")]

    secured = LocalCluster(cluster.binary, workers=1, root=root / "cluster", threads=1,
                           extra_coordinator_args=flags("coordinator"), extra_worker_args=flags("worker"))
    try:
        yield secured, certs / "ca.pem"
    finally:
        secured.close()


def test_a_client_with_the_ca_loads_and_searches(tls_cluster):
    cluster, ca = tls_cluster
    vectors = np.random.default_rng(6).standard_normal((200, 8)).astype(np.float32)
    with cluster.client(root_certificates=str(ca)) as c:
        c.create("tls", dimension=8, metric="l2", nlist=4)
        try:
            ids = c.load("tls", vectors)
            found, scores = c.search("tls", vectors[:5], k=1, nprobe=4)
            assert found[:, 0].tolist() == ids[:5].tolist() and np.allclose(scores[:, 0], 0, atol=1e-3)
        finally:
            c.drop("tls")


def test_a_plaintext_client_cannot_connect(tls_cluster):
    cluster, _ = tls_cluster
    with cluster.client(timeout=5) as c:
        with pytest.raises(quiver.Unavailable):
            c.collections()
