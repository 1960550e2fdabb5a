"""Quiver for VectorDBBench: a VectorDB client, a custom-dataset writer and a runner.

VectorDBBench (PyPI ``vectordb-bench``) keeps its databases in a closed enum, so Quiver is not
one of its command-line choices; :mod:`quiver_vdbbench.run` drives VectorDBBench's own case
runner (the code that times loads, serial and concurrent searches and computes recall) with
:class:`QuiverVectorDB` in place of a built-in client.
"""

from .client import QuiverConfig, QuiverIndexConfig, QuiverVectorDB

__all__ = ["QuiverConfig", "QuiverIndexConfig", "QuiverVectorDB"]
