# esp32_node_check.py's fake chip set up, in a module of its own: imported only when a test scripts the chip, so
# that the check script's own bytecode (on the node's 48K-word heap, beside the boot's peak) stays as small as the
# nodes' boot tests need.
import json

import machine


def script(path):
    """The fake machine's dicts updated from the JSON file at path; "broken": the name of a machine class replaced
    by one raising TypeError, as a bug would (or, with "broken_with": "OSError", an OSError the HAL names no field
    for); "boot_py": firmware/boot.py's path, run first as after a soft reset."""
    with open(path) as source:
        chip = json.load(source)
    for key in sorted(chip):
        if key == "broken":

            def broken(*args, **kwargs):
                if chip.get("broken_with") != "OSError":
                    raise TypeError("a bug")
                raise OSError(5, "EIO")

            setattr(machine, chip[key], broken)
        elif key == "boot_py":
            machine.resets["cause"] = machine.SOFT_RESET
            with open(chip[key]) as boot:
                exec(boot.read(), {"__name__": "boot"})
        elif key != "broken_with":
            getattr(machine, key).update(chip[key])

