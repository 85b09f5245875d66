"""The compiled core really is compiled with its .pxd files, and behaves like the pure one where they differ."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from loadmesh.companion.runtimes import Runtime

from .conftest import ROOT

CORE_DIR = ROOT / "shared" / "core"


def test_every_pxd_has_its_module() -> None:
    for pxd in sorted(CORE_DIR.glob("*.pxd")):
        assert pxd.with_suffix(".py").is_file(), f"{pxd.name} has no {pxd.stem}.py"


# A .pxd that Cython does not find is silently ignored: the module compiles
# as plain Python and is merely slower. Each row is something only the .pxd
# can do: make a class an extension type, or a function C-only.
@pytest.mark.parametrize(("module", "probe"), [
    # Site is an extension type: its instances have no __dict__
    ("site", lambda m: not hasattr(m.Site(), "__dict__")),
    # the water-filling helpers are C functions, invisible from Python
    ("allocate", lambda m: not hasattr(m, "_fill") and not hasattr(m, "_stop")),
    # the row formatter is a C function too
    ("view", lambda m: not hasattr(m, "_row")),
])
def test_compiled_build_uses_its_pxd(all_runtimes: list[Runtime], module: str, probe: object) -> None:
    # all_runtimes has loaded and checked the compiled core (current .so files)
    assert Path(CORE_DIR / f"{module}.pxd").is_file()
    compiled = importlib.import_module("loadmesh.core." + module)
    pure = importlib.import_module("_loadmesh_core_pure." + module)
    assert callable(probe)
    assert probe(compiled), f"loadmesh.core.{module} was compiled without {module}.pxd"
    assert not probe(pure)  # the probe tells the two apart


def test_override_copy_keeps_every_attribute(all_runtimes: list[Runtime]) -> None:
    # Site.overridden copies attributes by name; an extension type only has
    # the ones site.pxd declares, so a name missing there would break it.
    for package in ("loadmesh.core", "_loadmesh_core_pure"):
        site = importlib.import_module(package + ".site")
        model = site.parse({"site": {"phases": 1, "voltage_v": 230, "limit_ma": 16000, "safety_pct": 100},
                            "loads": [{"id": "a", "phases": "L1", "min_ma": 6000, "max_ma": 16000, "step_ma": 1000,
                                       "priority": 0, "mode": "continuous", "demand": True, "online": False}]})
        copy = model.overridden({"a": 2000}, {"a": True})
        for name in site._ATTRIBUTES:
            if name not in ("load_reserve_ma", "load_active"):
                value = getattr(model, name)
                # lists and dicts are shared, not copied; ints are C fields when compiled
                assert getattr(copy, name) is value if isinstance(value, (list, dict)) else getattr(copy, name) == value
        assert (copy.load_reserve_ma, copy.load_active) == ([2000], [True])
        assert (model.load_reserve_ma, model.load_active) == ([16000], [False])
