# loadmesh node: runs first at power-up. Nothing is driven here: every actuator
# stays at its hardware default (no pilot, relays open) until main.py starts
# the node, which boots in its safe state.
#
# And after a soft reset: mpremote makes one before it copies files (and Ctrl-D
# at the REPL does), after which main.py does not run. A watchdog the node
# started is still running then (an ESP32's cannot be stopped, and a soft
# reset stops the timers that could feed it), so the board would reset within
# seconds, cutting the copy off. A timer feeds it until the node's HAL takes it
# over (Esp32Hal stops this timer) or a hard reset ends it; with no watchdog
# running before, this starts one that the same timer keeps fed.
import machine

if getattr(machine, "SOFT_RESET", None) is not None and machine.reset_cause() == machine.SOFT_RESET:
    try:
        _watchdog = machine.WDT(timeout=8000)  # the longest hw.json allows; the HAL sets the node's own
        machine.Timer(0).init(period=1000, mode=machine.Timer.PERIODIC, callback=lambda _timer: _watchdog.feed())
    except Exception as exc:  # a boot.py that raises keeps the port from running main.py
        print("loadmesh boot: the watchdog is not fed after this soft reset:", repr(exc))
