"""Shared pytest fixtures. `synth_dataset`: a tiny synthetic dataset folder (8 infants, each a
1 s / 8 fps / 192 px video with per-frame masks plus a still), written once per session."""

from __future__ import annotations

import os
import tempfile

import pytest

# Tests never write into the user's ~/.cache: one throwaway frame cache per test session
# (per xdist worker), set before any neometer module reads it.
os.environ.setdefault("NEOMETER_CACHE", tempfile.mkdtemp(prefix="neometer-test-cache-"))

try:  # keep the 2 shared CPU cores usable by the other test workers
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency, but conftest must not need it
    pass

SYNTH_SEED = 1234
SYNTH_INFANTS = 8


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory):
    """Path to a tiny synthetic dataset: manifest.csv, videos/, stills/, masks/, labels.json."""
    from neometer.synth.writer import write_dataset

    out = tmp_path_factory.mktemp("synth") / "dataset"
    return write_dataset(out, n_infants=SYNTH_INFANTS, seed=SYNTH_SEED, preset="tiny", progress=False)
