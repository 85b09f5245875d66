# The test fakes of the ESP32's C modules (machine, network, onewire: tests/nodeside/fakes), frozen into the
# host's node image only (loadmesh.companion.nodeimage includes this after firmware/manifest.py, which an ESP32
# build uses and which must not gain them). On a board those modules are C, their code in flash; compiled from
# .py at import they took 16,992 bytes of the test node's 48wK heap, and its compiler's peak on top
# (docs/firmware.md, Memory).
#
# Frozen as fakes/machine.py etc., not machine.py: a frozen module is found through a sys.path entry, and
# ".frozen" (first on every node's path) would then give the fake to every node that imports machine, a
# simulated one too. Under fakes/ only the entry ".frozen/fakes" finds them, and only a node that runs against
# the fakes has it on its path (tests/mpnode.py environment(fakes=True)); anything else importing machine
# gets the unix port's own module, as before.
package("fakes")  # noqa: F821  (a manifest function)
