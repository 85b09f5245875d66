# Node side of tests/test_node_hal_esp32.py: drives the ESP32 HAL against the fake machine/onewire
# modules and prints what it observes.
#   hal_esp32_check.py FILE   FILE holds {"hw": {...}, "steps": [[step, args...], ...]}
import json
import sys

import machine
import onewire

from loadmesh.node.hal import open_hal

with open(sys.argv[1]) as source:
    script = json.load(source)


def outputs():
    pwm = {}
    for pin in sorted(machine.pwms):
        p = machine.pwms[pin]
        pwm[str(pin)] = {"freq": p.freq_hz, "duty_u16": p.u16, "duty_ns": p.ns}
    # A PWM's pin is reported by its PWM: its level is the one it had before the PWM took it.
    return {"pwm": pwm, "pins": {str(pin): machine.levels[pin] for pin in sorted(machine.levels)
                                 if pin not in machine.pwms},
            "wdt": dict(machine.watchdog)}


try:
    hal = open_hal(script["hw"])
except ValueError as exc:  # FieldError is one
    print(json.dumps({"error": str(exc)}))
    sys.exit(0)
results = [outputs()]
for step in script["steps"]:
    name = step[0]
    args = step[1:]
    if name == "adc":
        machine.adc_uv[args[0]] = args[1]
        result = None
    elif name == "level":
        machine.levels[args[0]] = args[1]
        result = None
    elif name == "scratch":
        onewire.scratchpads[bytes.fromhex(args[0])] = bytes(args[1])
        result = None
    elif name == "bus":
        onewire.bus["present"] = args[0]
        result = None
    elif name == "outputs":
        result = outputs()
    elif name == "pulls":
        result = {str(pin): machine.pulls[pin] for pin in sorted(machine.pulls)}
    elif name == "history":
        result = {str(pin): machine.history[pin] for pin in sorted(machine.history)}
    else:
        result = getattr(hal, name)(*args)
    results.append(result)
print(json.dumps(results))
