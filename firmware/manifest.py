# Frozen modules of a loadmesh node: the staged library (lib/loadmesh: the
# core and the node runtime), compiled into the firmware image so that their
# bytecode runs from flash instead of taking heap (docs/firmware.md, Memory).
#
# It reads the staged tree, so stage first (./tools/setup, or loadmesh stage).
# The unix-port node image (loadmesh.companion.nodeimage, run by tools/setup)
# includes this file after asyncio. An ESP32 build uses it beside its port's own manifest, with a
# board manifest such as
#     include("$(PORT_DIR)/boards/manifest.py")
#     include("/path/to/loadmesh/firmware/manifest.py")
# and make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/that/board/manifest.py.
# boot.py and main.py stay in the file system, as MicroPython runs them there.
package("loadmesh", base_path="../build/device/py/lib")  # noqa: F821  (a manifest function)
