"""VectorDBBench's case runner with Quiver in place of a built-in client.

A module-level class, because VectorDBBench pickles the runner into its worker processes.
"""

from __future__ import annotations

from vectordb_bench.backend.task_runner import CaseRunner

from .client import QuiverVectorDB


class QuiverCaseRunner(CaseRunner):
    """Runs a case exactly as VectorDBBench does; only the database object differs."""

    collection_name: str = "vdbbench"

    def init_db(self, drop_old: bool = True) -> None:
        self.db = QuiverVectorDB(
            dim=self.ca.dataset.data.dim,
            db_config=self.config.db_config.to_dict(),
            db_case_config=self.config.db_case_config,
            collection_name=self.collection_name,
            drop_old=drop_old,
        )
