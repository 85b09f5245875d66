"""Every JSON vector gives its expected bytes on each of the four runtimes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadmesh.companion.runtimes import Runtime
from loadmesh.core import canon

from .conftest import VECTORS_DIR, load_vector, vector_paths


def _id(path: Path) -> str:
    return path.relative_to(VECTORS_DIR).with_suffix("").as_posix()


@pytest.mark.parametrize("path", vector_paths(), ids=_id)
def test_vector_gives_expected_bytes(runtime: Runtime, path: Path) -> None:
    vector = load_vector(path)
    got = runtime.respond(str(vector["entry"]), vector["input"])
    assert got == canon.dumps(vector["expect"])


@pytest.mark.parametrize("path", vector_paths(), ids=_id)
def test_vector_bytes_identical_across_runtimes(all_runtimes: list[Runtime], path: Path) -> None:
    vector = load_vector(path)
    outputs = {r.name: r.respond(str(vector["entry"]), vector["input"]) for r in all_runtimes}
    assert len(set(outputs.values())) == 1, json.dumps(outputs, indent=1)


def test_there_are_vectors() -> None:
    assert len(vector_paths()) >= 3
