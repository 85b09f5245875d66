"""Build hook: compile loadmesh.core with Cython where it can, else install it pure.

    LOADMESH_PURE=1            do not compile; install the core as plain Python
    LOADMESH_REQUIRE_CYTHON=1  a failed compile is an error, not a fallback

Without either, a missing Cython or a failed compile falls back to pure Python
with a warning, so an install never fails for want of a compiler.
"""

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
CORE_DIR = "shared/core"

# The import tree is laid out over three folders (see DESIGN.md, "Layout").
PACKAGE_ROOTS = {
    "loadmesh": "firmware/lib/loadmesh",
    "loadmesh.core": CORE_DIR,
    "loadmesh.companion": "companion",
}


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "no")


def _packages() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for name, folder in PACKAGE_ROOTS.items():
        package_dir[name] = folder
        packages.append(name)
    # loadmesh.node and its subpackages live under firmware/lib/loadmesh,
    # loadmesh.companion's (sim) under companion.
    for init in sorted((ROOT / "firmware/lib/loadmesh").rglob("__init__.py")):
        relative = init.parent.relative_to(ROOT / "firmware/lib")
        name = ".".join(relative.parts)
        if name not in packages:
            packages.append(name)
    for init in sorted((ROOT / "companion").rglob("__init__.py")):
        relative = init.parent.relative_to(ROOT / "companion")
        name = ".".join(("loadmesh", "companion", *relative.parts))
        if name not in packages:
            packages.append(name)
            package_dir[name] = "companion/" + relative.as_posix()
    return packages, package_dir


def _compiled_modules() -> list[str]:
    """One list: every core module but __init__ is compiled."""
    return sorted(path.stem for path in (ROOT / CORE_DIR).glob("*.py") if path.name != "__init__.py")


def _extensions() -> list:
    if _flag("LOADMESH_PURE"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if _flag("LOADMESH_REQUIRE_CYTHON"):
            raise
        print("loadmesh: Cython is not installed; installing loadmesh.core as pure Python", file=sys.stderr)
        return []
    from setuptools import Extension

    modules = [
        Extension("loadmesh.core." + name, [f"{CORE_DIR}/{name}.py"])
        for name in _compiled_modules()
    ]
    return cythonize(
        modules,
        include_path=[_pxd_tree()],
        compiler_directives={
            "language_level": "3",
            # Python annotations are for mypy and say nothing about C types: a
            # "x: int" would otherwise make Cython refuse bool and None where
            # CPython and MicroPython accept them. C types come from .pxd files.
            "annotation_typing": False,
        },
        build_dir="build/cython",  # generated C stays out of the source tree
        quiet=True,
        nthreads=os.cpu_count() or 1,  # Cython's C generation, a module per process
    )


def _pxd_tree() -> str:
    """A folder where shared/core is found as loadmesh/core, the name Cython looks up a module's .pxd by.

    Without it Cython compiles loadmesh.core.x from shared/core/x.py but never
    sees shared/core/x.pxd (nor resolves "from .site cimport Site").
    """
    tree = ROOT / "build" / "cython-include"
    package = tree / "loadmesh"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").touch()
    link = package / "core"
    if not link.is_symlink():
        link.symlink_to(ROOT / CORE_DIR, target_is_directory=True)
    return str(tree)


class OptionalBuildExt(build_ext):
    """A failed compile falls back to pure Python unless LOADMESH_REQUIRE_CYTHON is set."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1  # the C compiler, a module per core: setup's longest step

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            self._fallback(exc)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._fallback(exc)

    def _fallback(self, exc: Exception) -> None:
        if _flag("LOADMESH_REQUIRE_CYTHON"):
            raise exc
        print(f"loadmesh: compiling loadmesh.core failed ({exc}); it stays pure Python", file=sys.stderr)


packages, package_dir = _packages()
setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"loadmesh.core": ["*.pxd"]},
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
