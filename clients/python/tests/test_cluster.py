"""The client against a real cluster: collections, loads, searches and errors."""

from __future__ import annotations

import numpy as np
import pytest

import quiver
from quiver import client as client_module


def normalised(rows: int, dimension: int, seed: int) -> np.ndarray:
    """Seeded random unit vectors, float32."""
    data = np.random.default_rng(seed).standard_normal((rows, dimension)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def exact_top_k(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of the k largest inner products per query (the ground truth)."""
    return np.argsort(-(queries.astype(np.float32) @ base.astype(np.float32).T), axis=1, kind="stable")[:, :k]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / truth.size


# ---- collections ------------------------------------------------------------------------------


def test_create_describe_list_and_drop(client, collection_name):
    created = client.create(collection_name, dimension=16, metric="ip", nlist=8, raw="float16", replication=2)
    assert (created.name, created.dimension, created.metric, created.raw, created.replication) == (
        collection_name, 16, "ip", "float16", 2)
    assert created.state == "CREATED" and created.vector_count == 0 and created.model_version == 0

    described = client.describe(collection_name)
    assert described.name == collection_name and described.nlist == 8 and described.metric == "ip"
    assert collection_name in [c.name for c in client.collections()]

    assert client.drop(collection_name) is True
    with pytest.raises(quiver.NotFound):
        client.describe(collection_name)
    assert collection_name not in [c.name for c in client.collections()]
    assert client.drop(collection_name, if_exists=True) is False
    with pytest.raises(quiver.NotFound):
        client.drop(collection_name)


def test_creating_a_taken_name_raises_already_exists(client, collection_name):
    client.create(collection_name, dimension=8, metric="l2")
    try:
        with pytest.raises(quiver.AlreadyExists) as raised:
            client.create(collection_name, dimension=8, metric="l2")
        assert raised.value.code.name == "ALREADY_EXISTS" and collection_name in raised.value.details
    finally:
        client.drop(collection_name)


def test_bad_settings_raise_invalid_argument(client, collection_name):
    with pytest.raises(quiver.InvalidArgument):
        client.create(collection_name, dimension=8, metric="hamming")
    with pytest.raises(quiver.InvalidArgument):
        client.create(collection_name, dimension=8, metric="l2", raw="int8")
    with pytest.raises(quiver.InvalidArgument):  # rejected by the server: dimension 0
        client.create(collection_name, dimension=0, metric="l2")
    assert client.drop(collection_name, if_exists=True) is False


# ---- load and search --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(cluster):
    """5,000 random unit vectors of dimension 32, loaded as float32 without ids."""
    base = normalised(5000, 32, seed=1)
    queries = normalised(200, 32, seed=2)
    with cluster.client(timeout=120.0) as c:
        c.create("recall32", dimension=32, metric="cosine", nlist=32)
        ids = c.load("recall32", base)
        yield c, base, queries, ids
        c.drop("recall32", if_exists=True)


def test_load_without_ids_returns_the_assigned_ids(loaded):
    c, base, _, ids = loaded
    assert ids.dtype == np.int64 and ids.shape == (len(base),)
    assert len(np.unique(ids)) == len(base) and ids.min() >= 0
    info = c.describe("recall32")
    assert info.state == "READY" and info.vector_count == len(base) and info.nlist == 32
    # Created without a precision: training chose float16 for these unit vectors.
    assert info.raw == "float16"


def test_a_collection_created_without_a_precision_reports_auto_until_trained(client, collection_name):
    created = client.create(collection_name, dimension=8, metric="l2")
    try:
        assert created.raw == "auto"
    finally:
        client.drop(collection_name)


def test_search_recall_against_brute_force(loaded):
    c, base, queries, ids = loaded
    truth = ids[exact_top_k(base, queries, 10)]
    found, scores = c.search("recall32", queries, k=10, nprobe=16, reorder_k=100)
    assert found.shape == (len(queries), 10) and found.dtype == np.int64
    assert scores.shape == (len(queries), 10) and scores.dtype == np.float32
    assert recall(found, truth) >= 0.95
    # Re-ranked scores are inner products with the stored vectors, best first. Stored as float16
    # (the automatic choice here), each component is within 2^-11 of its value relatively, so a
    # unit query's score is within 2^-11 of the exact one.
    row_of = {int(i): row for row, i in enumerate(ids)}
    expected = np.array([[queries[q] @ base[row_of[int(i)]] for i in found[q]] for q in range(len(queries))])
    np.testing.assert_allclose(scores, expected, atol=2.0**-11 + 1e-5)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_fewer_lists_probed_finds_less(loaded):
    c, base, queries, ids = loaded
    truth = ids[exact_top_k(base, queries, 10)]
    narrow = recall(c.search("recall32", queries, k=10, nprobe=1, reorder_k=100).ids, truth)
    wide = recall(c.search("recall32", queries, k=10, nprobe=32, reorder_k=100).ids, truth)
    assert narrow < wide and wide >= 0.97


def test_searches_without_knobs_reach_the_calibrated_recall_target(loaded):
    c, base, queries, ids = loaded
    info = c.describe("recall32")
    assert info.recall_target == 0.95
    assert [level["recall_target"] for level in info.search_defaults] == [0.9, 0.95, 0.99]
    assert all(level["reached"] and level["sample_recall"] >= level["recall_target"] for level in info.search_defaults)
    truth = ids[exact_top_k(base, queries, 10)]
    assert recall(c.search("recall32", queries, k=10).ids, truth) >= 0.95 - 0.03
    assert recall(c.search("recall32", queries, k=10, recall=0.99).ids, truth) >= 0.99 - 0.03
    with pytest.raises(quiver.InvalidArgument):
        c.search("recall32", queries, k=10, recall=1.5)
    with pytest.raises(quiver.InvalidArgument):
        c.search("recall32", queries, k=10, recall=0.9, nprobe=4)


def test_a_single_query_gives_one_row(loaded):
    c, base, _, ids = loaded
    result = c.search("recall32", base[7], k=5, nprobe=32)
    assert result.ids.shape == (5,) and result.scores.shape == (5,)
    assert result.ids[0] == ids[7] and result.scores[0] == pytest.approx(1.0, abs=1e-3)
    assert result.coverage == 1.0 and float(result.query_coverage) == 1.0


def test_float16_queries_are_widened(loaded):
    c, base, queries, _ = loaded
    from_f32 = c.search("recall32", queries[:20], k=10, nprobe=32)
    from_f16 = c.search("recall32", queries[:20].astype(np.float16), k=10, nprobe=32)
    assert from_f16.ids.shape == (20, 10) and from_f16.scores.dtype == np.float32
    assert recall(from_f16.ids, from_f32.ids) >= 0.9  # float16 rounding moves few neighbours


def test_coverage_is_reported(loaded):
    c, _, queries, _ = loaded
    ids, scores, coverage = c.search("recall32", queries[:3], k=4, return_coverage=True)
    assert ids.shape == (3, 4) and scores.shape == (3, 4) and coverage == 1.0
    result = c.search("recall32", queries[:3], k=4, require_full_coverage=True)
    assert result.lists_probed > 0 and result.lists_answered == result.lists_probed
    assert result.workers_answered == result.workers_queried >= 1


def test_a_large_batch_is_split_into_several_requests(loaded, monkeypatch):
    c, _, queries, _ = loaded
    whole = c.search("recall32", queries, k=10, nprobe=8)
    calls = []
    original = c._call

    def counting(method, request, timeout=None, read_only=False):
        calls.append(request)
        return original(method, request, timeout, read_only)

    monkeypatch.setattr(client_module, "SEARCH_CHUNK_BYTES", 32 * 4 * 30)  # 30 queries per request
    monkeypatch.setattr(c, "_call", counting)
    split = c.search("recall32", queries, k=10, nprobe=8)
    assert len(calls) == 7 and sum(r.queries.rows for r in calls) == len(queries)
    np.testing.assert_array_equal(split.ids, whole.ids)
    np.testing.assert_allclose(split.scores, whole.scores)


def test_float16_load_with_ids_in_small_batches(client, collection_name):
    base = normalised(3000, 16, seed=3).astype(np.float16)
    ids = np.arange(3000, dtype=np.int64) * 7 + 1000
    seen = []
    client.create(collection_name, dimension=16, metric="ip", nlist=16, raw="float16")
    try:
        returned = client.load(collection_name, base, ids=ids, batch_rows=250, progress=lambda done, total: seen.append((done, total)))
        np.testing.assert_array_equal(returned, ids)
        assert seen[-1] == (3000, 3000) and [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 12
        found, scores = client.search(collection_name, base[:50], k=3, nprobe=16)
        assert set(found.ravel().tolist()) <= set(ids.tolist())
        assert np.mean(found[:, 0] == ids[:50]) >= 0.96  # each vector finds itself
        assert client.describe(collection_name).vector_count == 3000
    finally:
        client.drop(collection_name)


# ---- errors -----------------------------------------------------------------------------------


def test_unknown_collection_raises_not_found(client):
    with pytest.raises(quiver.NotFound):
        client.search("no_such_collection", np.zeros(4, dtype=np.float32), k=1)
    with pytest.raises(quiver.NotFound):
        client.load("no_such_collection", np.ones((2, 4), dtype=np.float32))
    with pytest.raises(LookupError):  # NotFound is also a LookupError
        client.describe("no_such_collection")


def test_wrong_dimension_and_nan_raise_invalid_argument(loaded):
    c, _, queries, _ = loaded
    with pytest.raises(quiver.InvalidArgument) as raised:
        c.search("recall32", np.ones((2, 31), dtype=np.float32), k=5)
    assert "31" in raised.value.details or "32" in raised.value.details
    with pytest.raises(quiver.InvalidArgument):
        c.load("recall32", np.ones((3, 33), dtype=np.float32))
    bad = queries[:4].copy()
    bad[2, 5] = np.nan
    with pytest.raises(quiver.InvalidArgument):
        c.search("recall32", bad, k=5)
    rows = normalised(4, 32, seed=9)
    rows[1, 0] = np.inf
    with pytest.raises(quiver.InvalidArgument):
        c.load("recall32", rows)
    with pytest.raises(quiver.InvalidArgument):
        c.search("recall32", queries[:2], k=0)
    assert c.describe("recall32").vector_count == 5000  # nothing of the failed loads was stored


def test_search_before_training_raises_failed_precondition(client, collection_name):
    client.create(collection_name, dimension=8, metric="l2")
    try:
        with pytest.raises(quiver.FailedPrecondition):
            client.search(collection_name, np.zeros((1, 8), dtype=np.float32), k=1)
        with pytest.raises(quiver.FailedPrecondition):
            client.load(collection_name, np.ones((5, 8), dtype=np.float32), train=False)
    finally:
        client.drop(collection_name)


def test_bad_arrays_are_refused_before_sending(client):
    with pytest.raises(quiver.InvalidArgument):
        client.load("anything", np.zeros((2, 3, 4), dtype=np.float32))
    with pytest.raises(quiver.InvalidArgument):
        client.load("anything", np.array([["a", "b"]]))
    with pytest.raises(quiver.InvalidArgument):
        client.load("anything", np.ones((3, 4), dtype=np.float32), ids=[1, 2])


def test_an_unreachable_coordinator_raises_unavailable():
    with quiver.Client("127.0.0.1:1", timeout=5) as c:
        with pytest.raises(quiver.Unavailable):
            c.collections()


# ---- server-side loads ------------------------------------------------------------------------


def test_load_files_waits_for_the_job(cluster, client, collection_name):
    base = normalised(4000, 24, seed=4)
    shards = [cluster.import_root / f"{collection_name}.{i:02d}.npy" for i in range(2)]
    np.save(shards[0], base[:2500])
    np.save(shards[1], base[2500:].astype(np.float16))
    client.create(collection_name, dimension=24, metric="cosine", nlist=20)
    try:
        status = client.load_files(collection_name, str(cluster.import_root / f"{collection_name}.*.npy"), wait=True, wait_timeout=300)
        assert status.state == "SUCCEEDED" and status.rows_done == 4000 and status.files_total == 2
        assert client.describe(collection_name).vector_count == 4000
        assert client.load_status(status.job_id).state == "SUCCEEDED"
        # Ids are row numbers across the files in order.
        found, _ = client.search(collection_name, base[[10, 3000]], k=1, nprobe=20)
        assert found[:, 0].tolist() == [10, 3000]
    finally:
        client.drop(collection_name)


def test_load_files_of_a_missing_file_fails_clearly(cluster, client, collection_name):
    client.create(collection_name, dimension=8, metric="l2")
    try:
        with pytest.raises(quiver.QuiverError) as raised:
            client.load_files(collection_name, str(cluster.import_root / "missing-*.npy"), wait=True, wait_timeout=60)
        assert "missing" in str(raised.value)
    finally:
        client.drop(collection_name)


def test_unknown_load_job_raises_not_found(client):
    with pytest.raises(quiver.NotFound):
        client.load_status("no-such-job")


# ---- cluster ----------------------------------------------------------------------------------


def test_status_lists_both_workers(loaded):
    c, *_ = loaded
    status = c.status()
    assert len(status.workers) == 2 and all(w.health == "HEALTHY" for w in status.workers)
    assert sum(w.vectors for w in status.workers) >= 5000
    lists = np.concatenate([a.list_ids for a in status.assignments if a.collection == "recall32"])
    assert sorted(set(lists.tolist())) == list(range(32))


def test_health_service(cluster, client):
    if "health" not in dir(client) or not _has_health_stubs():
        pytest.skip("no grpc.health.v1 stubs generated")
    state = client.health("")
    assert state in ("SERVING", "NOT_SERVING")


def _has_health_stubs() -> bool:
    try:
        from quiver._proto.grpc.health.v1 import health_pb2  # noqa: F401
    except ImportError:
        return False
    return True


# ---- loads sent again, deletes -------------------------------------------------------------------


def test_a_load_sent_again_under_its_load_id_is_stored_once(client, collection_name):
    vectors = normalised(600, 16, seed=21)
    client.create(collection_name, dimension=16, metric="ip", nlist=8)
    first = client.load(collection_name, vectors, batch_rows=100, load_id="py-load-1")
    again = client.load(collection_name, vectors, batch_rows=250, load_id="py-load-1")
    assert np.array_equal(first, again)
    assert client.describe(collection_name).vector_count == 600
    ids, _ = client.search(collection_name, vectors[:50], k=2, nprobe=8, reorder_k=50)
    assert np.array_equal(ids[:, 0], first[:50])
    assert not np.any(ids[:, 1] == first[:50])


def test_deleted_ids_are_not_found_and_other_vectors_under_taken_ids_are_refused(client, collection_name):
    vectors = normalised(400, 16, seed=22)
    client.create(collection_name, dimension=16, metric="ip", nlist=8)
    ids = np.arange(1000, 1400, dtype=np.int64)
    client.load(collection_name, vectors, ids=ids)
    with pytest.raises(quiver.AlreadyExists):
        client.load(collection_name, normalised(400, 16, seed=23), ids=ids)
    assert client.delete(collection_name, ids[:100]) == 100
    assert client.delete(collection_name, ids[:100]) == 0
    assert client.describe(collection_name).vector_count == 300
    found, _ = client.search(collection_name, vectors[:100], k=5, nprobe=8, reorder_k=50)
    assert not np.isin(found, ids[:100]).any()


def test_several_addresses_reach_the_one_that_listens(cluster, collection_name):
    # A port nothing listens on first, as a dead leader's would be: the live one answers.
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead = probe.getsockname()[1]
    probe.close()
    with quiver.Client(f"127.0.0.1:{dead},{cluster.address}", timeout=30.0) as c:
        c.create(collection_name, dimension=8, metric="l2")
        try:
            assert collection_name in [info.name for info in c.collections()]
        finally:
            c.drop(collection_name)
