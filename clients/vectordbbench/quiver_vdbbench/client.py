"""VectorDBBench's ``VectorDB`` interface on top of the Quiver Python client."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import numpy as np
from pydantic import BaseModel

import quiver
from vectordb_bench.backend.clients.api import DBCaseConfig, DBConfig, MetricType, VectorDB

log = logging.getLogger(__name__)

_METRICS = {MetricType.COSINE: "cosine", MetricType.IP: "ip", MetricType.L2: "l2"}


class QuiverConfig(DBConfig):
    """Where the coordinator listens, and the optional bearer token."""

    address: str = "127.0.0.1:7700"
    token: Optional[str] = None

    def to_dict(self) -> dict:
        return {"address": self.address, "token": self.token}


class QuiverIndexConfig(BaseModel, DBCaseConfig):
    """Collection and search settings (0 / None = Quiver's defaults).

    ``train_rows``: rows of the first load the model trains on (the coordinator's default when
    0); the runner loads the data set in one batch so that training sees a uniform sample.
    """

    metric_type: Optional[MetricType] = None
    nlist: int = 0
    raw: str = "float32"
    replication: int = 1
    train_rows: int = 0
    nprobe: Optional[int] = None
    reorder_k: Optional[int] = None

    def index_param(self) -> dict:
        return {"nlist": self.nlist, "raw": self.raw, "replication": self.replication, "train_rows": self.train_rows}

    def search_param(self) -> dict:
        return {"nprobe": self.nprobe, "reorder_k": self.reorder_k}


class QuiverVectorDB(VectorDB):
    """One Quiver collection as a VectorDBBench database.

    The object is pickled into VectorDBBench's worker processes, so it holds settings only; each
    ``init()`` opens its own gRPC channel. Loading trains the collection on its first load (the
    training time is part of VectorDBBench's ``insert_duration``); ``optimize`` only waits until
    the coordinator counts every row, since Quiver indexes rows as they are stored.
    """

    name = "Quiver"
    thread_safe = True

    def __init__(
        self,
        dim: int,
        db_config: dict,
        db_case_config: Optional[QuiverIndexConfig],
        collection_name: str = "vdbbench",
        drop_old: bool = False,
        **kwargs: Any,
    ):
        self.dim = dim
        self.address = db_config["address"]
        self.token = db_config.get("token")
        self.case_config = db_case_config or QuiverIndexConfig()
        self.collection_name = collection_name
        self.client: Optional[quiver.Client] = None
        metric = _METRICS.get(self.case_config.metric_type or MetricType.COSINE)
        if metric is None:
            raise ValueError(f"Quiver supports COSINE, IP and L2, not {self.case_config.metric_type}")
        with self._connect() as client:
            if drop_old:
                client.drop(collection_name, if_exists=True)
            try:
                client.describe(collection_name)
            except quiver.NotFound:
                client.create(
                    collection_name, dimension=dim, metric=metric, nlist=self.case_config.nlist,
                    raw=self.case_config.raw, replication=self.case_config.replication,
                )
                client.train(collection_name, first_load=True, sample_rows=self.case_config.train_rows)

    def _connect(self) -> quiver.Client:
        return quiver.Client(self.address, token=self.token, timeout=60.0, load_timeout=7200.0)

    @contextmanager
    def init(self) -> Iterator[None]:
        """Opens this process's connection to the coordinator for the duration of the block."""
        self.client = self._connect()
        try:
            yield
        finally:
            self.client.close()
            self.client = None

    def need_normalize_cosine(self) -> bool:
        # The coordinator normalises vectors and queries of cosine collections itself.
        return False

    def insert_embeddings(
        self,
        embeddings,
        metadata,
        labels_data=None,
        tenant_labels_data=None,
        **kwargs: Any,
    ) -> tuple[int, Optional[Exception]]:
        """Streams one batch with its ids (VectorDBBench's ``metadata`` are the row ids)."""
        try:
            vectors = np.asarray(embeddings, dtype=np.float32)
            ids = np.asarray(metadata, dtype=np.int64)
            self.client.load(self.collection_name, vectors, ids=ids, train=False)
            return len(ids), None
        except quiver.QuiverError as error:
            log.warning("Quiver load failed: %s", error)
            return 0, error

    def search_embedding(self, query, k: int = 100, **kwargs: Any) -> list[int]:
        """Ids of the k nearest neighbours of one query."""
        ids, _ = self.client.search(
            self.collection_name, np.asarray(query, dtype=np.float32), k=k,
            nprobe=self.case_config.nprobe, reorder_k=self.case_config.reorder_k,
        )
        return [int(i) for i in ids if i >= 0]

    def optimize(self, data_size: Optional[int] = None) -> None:
        """Returns once the coordinator reports ``data_size`` stored vectors (bounded wait)."""
        deadline = time.monotonic() + 600
        while True:
            info = self.client.describe(self.collection_name)
            if data_size is None or info.vector_count >= data_size:
                log.info("Quiver collection %s: %d vectors, nlist %d", info.name, info.vector_count, info.nlist)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{info.vector_count} of {data_size} vectors stored after 600 s")
            time.sleep(0.5)
