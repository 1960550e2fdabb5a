"""Client behaviour that needs no cluster: conversions, error mapping, metadata, TLS, progress."""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest

import quiver
from quiver import _arrays, client as client_module, errors
from quiver._proto.quiver.v1 import coordinator_pb2, coordinator_pb2_grpc


def test_matrices_are_little_endian_float32_rows():
    assert _arrays.as_matrix(np.ones(5, dtype=np.float16), "q").shape == (1, 5)
    wide = _arrays.as_matrix(np.arange(6, dtype=">f8").reshape(2, 3), "q")
    assert wide.dtype == np.dtype("<f4") and wide.flags.c_contiguous and wide[1, 2] == 5.0
    assert _arrays.as_matrix(np.ones((4, 6))[:, ::2], "q").flags.c_contiguous
    for bad in (np.zeros((2, 2, 2)), np.array([["x"]]), np.zeros((0, 4)), np.array([1 + 2j])):
        with pytest.raises(quiver.InvalidArgument):
            _arrays.as_matrix(bad, "q")


def test_ids_must_be_integers_matching_the_rows():
    assert _arrays.as_ids(np.arange(3, dtype=np.uint32), 3).dtype == np.dtype("<i8")
    with pytest.raises(quiver.InvalidArgument):
        _arrays.as_ids([1.5, 2.0], 2)
    with pytest.raises(quiver.InvalidArgument):
        _arrays.as_ids([1, 2, 3], 2)


def test_unpack_checks_the_byte_count():
    data = np.arange(4, dtype="<i8").tobytes()
    np.testing.assert_array_equal(_arrays.unpack(data, _arrays.INT64, 4, "ids"), np.arange(4))
    with pytest.raises(quiver.InvalidArgument):
        _arrays.unpack(data, _arrays.INT64, 5, "ids")


@pytest.mark.parametrize("code, cls", [
    (grpc.StatusCode.NOT_FOUND, quiver.NotFound),
    (grpc.StatusCode.ALREADY_EXISTS, quiver.AlreadyExists),
    (grpc.StatusCode.INVALID_ARGUMENT, quiver.InvalidArgument),
    (grpc.StatusCode.FAILED_PRECONDITION, quiver.FailedPrecondition),
    (grpc.StatusCode.UNAVAILABLE, quiver.Unavailable),
    (grpc.StatusCode.DEADLINE_EXCEEDED, quiver.DeadlineExceeded),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, quiver.ResourceExhausted),
    (grpc.StatusCode.UNAUTHENTICATED, quiver.Unauthenticated),
    (grpc.StatusCode.PERMISSION_DENIED, quiver.PermissionDenied),
    (grpc.StatusCode.DATA_LOSS, quiver.QuiverError),
])
def test_status_codes_map_to_exception_classes(code, cls):
    error = errors.from_status(code, "what happened")
    assert type(error) is cls and error.code is code and error.details == "what happened"
    assert str(error) == f"{code.name}: what happened"
    assert isinstance(errors.from_status_number(code.value[0], "x"), cls)


class RecordingCoordinator(coordinator_pb2_grpc.CoordinatorServicer):
    """A stand-in coordinator that records the metadata of each call."""

    def __init__(self):
        self.metadata = []

    def ListCollections(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        return coordinator_pb2.ListCollectionsResponse()

    def Search(self, request, context):
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "role read needed")


@pytest.fixture
def fake_server():
    """A gRPC server on 127.0.0.1 with an ephemeral port: (servicer, server, port)."""
    servicer = RecordingCoordinator()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    coordinator_pb2_grpc.add_CoordinatorServicer_to_server(servicer, server)
    yield servicer, server
    server.stop(grace=None)


def test_a_token_is_sent_as_bearer_metadata(fake_server, monkeypatch):
    servicer, server = fake_server
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with quiver.Client(f"127.0.0.1:{port}", token="s3cret") as c:
        assert c.collections() == []
        with pytest.raises(quiver.PermissionDenied, match="role read needed"):
            c.search("docs", np.zeros(4, dtype=np.float32))
    monkeypatch.setenv("QUIVER_TOKEN", "from-env")
    with quiver.Client(f"127.0.0.1:{port}") as c:
        c.collections()
    monkeypatch.delenv("QUIVER_TOKEN")
    with quiver.Client(f"127.0.0.1:{port}") as c:
        c.collections()
    assert [m.get("authorization") for m in servicer.metadata] == ["Bearer s3cret", "Bearer from-env", None]


def _server_stopping_under_its_first_call():
    """A gRPC server on 127.0.0.1 that stops (cancelling every call) while its first call runs,
    and another that takes over its port: (port, collections the second was asked for, servers)."""
    answered = []
    first = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    second = grpc.server(futures.ThreadPoolExecutor(max_workers=2))

    class Stopping(coordinator_pb2_grpc.CoordinatorServicer):
        def Search(self, request, context):
            def take_over():
                first.stop(grace=None).wait()
                second.add_insecure_port(f"127.0.0.1:{port}")
                second.start()
            threading.Thread(target=take_over).start()
            time.sleep(5)
            return coordinator_pb2.SearchResponse()

    class Answering(coordinator_pb2_grpc.CoordinatorServicer):
        def Search(self, request, context):
            answered.append(request.collection)
            return coordinator_pb2.SearchResponse()

    coordinator_pb2_grpc.add_CoordinatorServicer_to_server(Stopping(), first)
    coordinator_pb2_grpc.add_CoordinatorServicer_to_server(Answering(), second)
    port = first.add_insecure_port("127.0.0.1:0")
    first.start()
    return port, answered, (first, second)


@pytest.mark.parametrize("read_only", [True, False])
def test_a_read_only_call_whose_connection_fails_under_it_is_sent_again(read_only):
    port, answered, servers = _server_stopping_under_its_first_call()
    try:
        with quiver.Client(f"127.0.0.1:{port}", timeout=20) as c:
            request = coordinator_pb2.SearchRequest(collection="docs")
            if read_only:
                assert isinstance(c._call(c._stub.Search, request, read_only=True), coordinator_pb2.SearchResponse)
                assert answered == ["docs"]
            else:
                # A call that may change something is not sent twice: the failure is reported.
                with pytest.raises(quiver.Unavailable):
                    c._call(c._stub.Search, request)
                assert answered == []
    finally:
        for server in servers:
            server.stop(grace=None)


def test_tls_with_a_root_certificate(fake_server, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    servicer, server = fake_server
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    with quiver.Client(f"127.0.0.1:{port}", root_certificates=str(cert), token="t") as c:
        assert c.collections() == []
    with quiver.Client(f"127.0.0.1:{port}", timeout=5) as plain:  # a plaintext client cannot talk to it
        with pytest.raises(quiver.Unavailable):
            plain.collections()
    assert servicer.metadata[0]["authorization"] == "Bearer t"


def test_progress_prints_plain_lines_when_not_a_terminal(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(client_module.sys, "stderr", out)
    report = client_module._progress_reporter(True, 100, "loading docs")
    report(50)
    report(100)
    report(None)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and lines[0].startswith("loading docs: 50/100 rows (50%)")
    assert lines[-1].startswith("loading docs: 100/100 rows (100%)")


def test_messages_may_be_256_mib():
    assert quiver.MAX_MESSAGE_BYTES == 256 * 1024 * 1024


def test_a_local_cluster_needs_a_worker(tmp_path):
    from quiver.local import LocalCluster

    with pytest.raises(ValueError):
        LocalCluster(tmp_path / "quiver", workers=0)
