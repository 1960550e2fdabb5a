"""Bearer tokens end to end, against a coordinator started with --tokens-file (where the binary has it)."""

from __future__ import annotations

import secrets

import numpy as np
import pytest

import quiver
from quiver.local import LocalCluster


@pytest.fixture(scope="module")
def secured(cluster, tmp_path_factory):
    """A second cluster whose coordinator knows one token per role; yields (cluster, tokens)."""
    if "--tokens-file" not in cluster.coordinator_help:
        pytest.skip("this quiver binary has no --tokens-file")
    root = tmp_path_factory.mktemp("secured")
    tokens = {role: secrets.token_hex(16) for role in ("read", "write", "admin")}
    path = root / "tokens"
    path.write_text("".join(f"{role} test-{role} {token}\n" for role, token in tokens.items()))
    path.chmod(0o600)
    secured = LocalCluster(cluster.binary, workers=1, root=root / "cluster", threads=1,
                           extra_coordinator_args=["--tokens-file", str(path)])
    try:
        yield secured, tokens
    finally:
        secured.close()


def test_calls_without_a_token_are_unauthenticated(secured):
    cluster, _ = secured
    with cluster.client(token="") as c:
        with pytest.raises(quiver.Unauthenticated):
            c.collections()


def test_an_unknown_token_is_unauthenticated(secured):
    cluster, _ = secured
    with cluster.client(token="not-a-token-of-this-cluster") as c:
        with pytest.raises(quiver.Unauthenticated):
            c.collections()


def test_roles_limit_what_a_token_may_do(secured):
    cluster, tokens = secured
    with cluster.client(token=tokens["read"]) as reader, cluster.client(token=tokens["write"]) as writer:
        assert reader.collections() == []
        with pytest.raises(quiver.PermissionDenied):
            reader.create("secured", dimension=8, metric="l2")
        writer.create("secured", dimension=8, metric="l2", nlist=2)
        try:
            writer.load("secured", np.random.default_rng(5).standard_normal((64, 8)).astype(np.float32))
            ids, _ = reader.search("secured", np.zeros(8, dtype=np.float32), k=3)
            assert ids.shape == (3,) and (ids >= 0).all()
            with pytest.raises(quiver.PermissionDenied):
                reader.drop("secured")
        finally:
            writer.drop("secured", if_exists=True)


def test_the_token_comes_from_the_environment(secured, monkeypatch):
    cluster, tokens = secured
    monkeypatch.setenv("QUIVER_TOKEN", tokens["read"])
    with cluster.client() as c:
        assert isinstance(c.collections(), list)
