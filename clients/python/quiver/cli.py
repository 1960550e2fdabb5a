"""``quiver-py``: search by text, list collections and show the cluster from Python.

Examples::

    quiver-py status
    quiver-py collections
    quiver-py search demo --text "fast http server in rust" --k 5 --sentences data/sample/base.tsv

The coordinator is ``--coordinator`` or ``$QUIVER_COORDINATOR`` (default 127.0.0.1:7700); a
bearer token comes from ``--token`` or ``$QUIVER_TOKEN``, a CA for TLS from ``--tls-ca``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from .client import Client
from .errors import QuiverError

#: Where `search` looks for sentences when --sentences is not given (relative to the cwd).
DEFAULT_SENTENCES = os.path.join("data", "sample", "base.tsv")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quiver-py", description="Quiver from Python: text search and status.")
    parser.add_argument(
        "--coordinator",
        default=os.environ.get("QUIVER_COORDINATOR", "127.0.0.1:7700"),
        help="coordinator HOST:PORT (default: $QUIVER_COORDINATOR, then 127.0.0.1:7700)",
    )
    parser.add_argument("--token", default=None, help="bearer token (default: $QUIVER_TOKEN)")
    parser.add_argument("--tls-ca", default=None, help="PEM file of the CA that signed the coordinator's certificate (enables TLS)")
    parser.add_argument("--timeout", type=float, default=60.0, help="deadline of each call in seconds")
    commands = parser.add_subparsers(dest="command", required=True)

    search = commands.add_parser("search", help="embed a sentence with all-MiniLM-L6-v2 and show its nearest neighbours")
    search.add_argument("collection")
    search.add_argument("--text", required=True, action="append", help="sentence to search for (repeatable)")
    search.add_argument("--k", type=int, default=5, help="neighbours per query (default 5)")
    search.add_argument("--nprobe", type=int, default=None, help="lists probed (default: the collection's)")
    search.add_argument("--reorder", type=int, default=None, help="candidates re-ranked exactly (default: the collection's)")
    search.add_argument("--recall", type=float, default=None, help="recall@10 to aim for instead of --nprobe/--reorder")
    search.add_argument(
        "--sentences",
        default=None,
        help=f"text file with one line per base vector, printed beside the ids (default: {DEFAULT_SENTENCES} if present)",
    )

    commands.add_parser("status", help="workers, collections and shard maps")
    commands.add_parser("collections", help="list collections")
    return parser


def _read_sentences(path: str) -> List[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n").replace("\t", "  ") for line in handle]


def _search(client: Client, args) -> int:
    if args.k <= 0:
        print("error: --k must be positive", file=sys.stderr)
        return 2
    sentences_path: Optional[str] = args.sentences
    if sentences_path is None and os.path.exists(DEFAULT_SENTENCES):
        sentences_path = DEFAULT_SENTENCES
    sentences = _read_sentences(sentences_path) if sentences_path else None
    from . import text  # needs the model package; imported only here

    vectors = text.embed(args.text)
    ids, scores = client.search(args.collection, vectors, k=args.k, nprobe=args.nprobe, reorder_k=args.reorder, recall=args.recall)
    for query, sentence in enumerate(args.text):
        print(f"query: {sentence}")
        for id_, score in zip(ids[query], scores[query]):
            if id_ < 0:
                continue
            label = f"  {sentences[id_]}" if sentences is not None and id_ < len(sentences) else ""
            print(f"  {id_:>10d}  {score:8.4f}{label}")
    return 0


def _status(client: Client) -> int:
    status = client.status()
    print("workers:")
    for w in status.workers:
        print(f"  {w.worker_id} ({w.address}) {w.health}: lists {w.lists_owned}, vectors {w.vectors}, "
              f"{w.bytes / 1e6:.1f} MB, queries {w.queries_served}")
    print("collections:")
    for c in status.collections:
        line = (f"  {c.name}: {c.state}, dimension {c.dimension}, metric {c.metric}, nlist {c.nlist}, "
                f"vectors {c.vector_count}, raw {c.raw}, replication {c.replication}")
        print(line + (f", error: {c.error}" if c.error else ""))
    return 0


def _collections(client: Client) -> int:
    for c in client.collections():
        print(f"{c.name}: {c.state}, dimension {c.dimension}, metric {c.metric}, nlist {c.nlist}, vectors {c.vector_count}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``quiver-py``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        with Client(args.coordinator, token=args.token, root_certificates=args.tls_ca, timeout=args.timeout) as client:
            if args.command == "search":
                return _search(client, args)
            if args.command == "status":
                return _status(client)
            return _collections(client)
    except QuiverError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ImportError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
