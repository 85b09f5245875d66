"""Fixtures that run the core on the four runtimes, from a freshly staged device tree."""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from loadmesh.companion import devtree
from loadmesh.companion.runtimes import RUNTIME_NAMES, Runtime, open_runtime
from loadmesh.core import allocate

from . import mpnode

ROOT = Path(__file__).resolve().parent.parent

# No deadlines: MicroPython round trips and a loaded CI machine make timings noise.
settings.register_profile("loadmesh", deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("loadmesh")
VECTORS_DIR = ROOT / "tests" / "vectors"


@pytest.fixture(scope="session")
def device_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The device tree staged from this checkout, so tests run exactly what a node gets."""
    out = tmp_path_factory.mktemp("device") / "device"
    devtree.stage(ROOT, out)
    return out


_opened: dict[str, Runtime] = {}


def _runtime(name: str, device_root: Path) -> Runtime:
    # A missing runtime is an error, never a skip: open_runtime raises SetupError.
    if name not in _opened:
        _opened[name] = open_runtime(name, device_root, source_dir=ROOT / "shared" / "core")
    return _opened[name]


@pytest.fixture(scope="session", params=RUNTIME_NAMES)
def runtime(request: pytest.FixtureRequest, device_root: Path) -> Runtime:
    """The core on each of the four runtimes in turn."""
    return _runtime(request.param, device_root)


@pytest.fixture(scope="session", params=("cpython-pure", "cpython-compiled"))
def core(request: pytest.FixtureRequest, device_root: Path) -> ModuleType:
    """loadmesh.core itself, pure (staged .py) or compiled, for in-process property tests.

    Every core module is imported, so core.<module>.<function> works on either.
    """
    _runtime(request.param, device_root)  # loads the variant and checks what it is
    return importlib.import_module("_loadmesh_core_pure" if request.param == "cpython-pure" else "loadmesh.core")


@pytest.fixture(scope="session")
def all_runtimes(device_root: Path) -> list[Runtime]:
    """The core on all four runtimes at once, for cross-runtime comparisons."""
    return [_runtime(name, device_root) for name in RUNTIME_NAMES]


@pytest.fixture(scope="session", autouse=True)
def _close_runtimes() -> Iterator[None]:
    yield
    for opened in _opened.values():
        opened.close()
    _opened.clear()


def load_vector(path: Path) -> dict[str, object]:
    """A vector: {"about", "entry", "input", "expect"}, expect being the whole response."""
    vector = json.loads(path.read_text())
    assert isinstance(vector, dict)
    for key in ("about", "entry", "input", "expect"):
        assert key in vector, f"{path.name}: vector has no {key!r}"
    return vector


def vector_paths() -> list[Path]:
    return sorted(VECTORS_DIR.rglob("*.json"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    mpnode.in_wallclock_test = item.get_closest_marker("wallclock") is not None


_per_runtime: Counter[tuple[str, str]] = Counter()
_INSTALLED_CORE = "cpython-pure" if allocate.__file__.endswith(".py") else "cpython-compiled"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    # Runs where the test ran (a pytest-xdist worker, or this process); the report carries the
    # runtimes to pytest_runtest_logreport, which runs where the results are gathered.
    report: pytest.TestReport = yield
    fixtures = getattr(item, "fixturenames", ())
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    if "runtime" in params or "core" in params:
        names: tuple[str, ...] = (params.get("runtime") or params["core"],)
    elif "interpreter" in params:
        # The firmware's pure modules on one interpreter (mpnode.SCRIPT_RUNTIMES): the unix ports by
        # name; CPython runs the installed core, compiled unless LOADMESH_PURE installed it plain.
        interpreter = params["interpreter"]
        names = (_INSTALLED_CORE if interpreter == "cpython" else interpreter,)
    elif "all_runtimes" in fixtures:
        names = RUNTIME_NAMES
    else:
        names = ()
    report.user_properties.append(("runtimes", ",".join(names)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and report.outcome == "passed":
        return
    names = dict(report.user_properties).get("runtimes", "")
    # An expected failure (a known gap, pinned) is not a skip: say which it is.
    outcome = "xfailed" if hasattr(report, "wasxfail") and report.outcome == "skipped" else report.outcome
    for name in str(names).split(","):
        if name:
            _per_runtime[(name, outcome)] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.section("tests per runtime")
    if not _per_runtime:
        # tools/test's wallclock lane: nodes and the simulator, none of them parametrized by runtime.
        terminalreporter.write_line("none of the tests that ran is run per runtime")
        return
    for name in RUNTIME_NAMES:
        counts = ", ".join(f"{_per_runtime[(name, o)]} {o}" for o in ("passed", "failed", "xfailed", "skipped")
                           if _per_runtime[(name, o)])
        terminalreporter.write_line(f"{name:>18}: {counts or 'NOTHING RAN'}")
