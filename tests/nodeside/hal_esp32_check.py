# Node side of tests/test_node_hal_esp32.py and test_node_wifi.py: drives the ESP32 HAL against the fake
# machine, network and onewire modules and prints what it observes: one JSON line, the last; the lines the HAL
# printed on its console come before it, in order.
#   hal_esp32_check.py FILE   FILE holds {"hw": {...}, "steps": [[step, args...], ...]} and, optionally,
#                             "station": the fake radio's fields before the HAL is built, "machine": the fake
#                             machine's dicts updated before then (e.g. {"adc_calibrated": {"ok": false}})
# Besides the HAL's own methods: ["ticks", from_ms, to_ms] (poll() every 100 ms, as the node's tick, up to but not
# including to_ms), ["adc", pin, [uv...]], ["level", pin, 0|1], ["scratch", rom, pad], ["bus", present], ["bus_time"]
# (the 1-Wire bus's resets and microseconds since the last one), ["outputs"], ["pulls"], ["history"] (what the
# outputs drove; nothing when FILE says "record": false), ["repeat", n, [method, args...], ...] (HAL methods n
# times over), ["heap"] (bytes in use after a collection); a HAL method that raises ValueError gives {"raised":
# its words}; the Wi-Fi: ["station", {field: value}] (the fake station's
# fields, e.g. {"refuse": "connect"}), the driver's events ["disconnected", reason] (an attempt or the link failed)
# and ["got_ip", ifconfig], ["network"] (the calls the HAL made of it, and clears them), ["reads"] (how it read the
# addresses: ifconfig() or ipconfig(), and clears them), ["ifconfig_only"] (the port before ipconfig()); the clock:
# ["wifi", gateway or null] (the station connected with that gateway, or not), ["ntp_port", port] (an NTP server
# listens on 127.0.0.1:port, and the HAL's SNTP client asks there rather than on port 123), ["ntp_answer", unix_s]
# (the server reads the next request, answers it), ["clock", method] (the clock's method called, e.g. "dns_server").
import gc
import json
import socket
import struct
import sys

import machine
import network
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


if script.get("record", True):  # "record": false: the fakes as a long-running node script finds them (["heap"])
    network.record()  # the calls and reads the steps check (["network"], ["reads"]), each taken out as it is checked
    machine.record()  # what the outputs drove (["history"], and a refused wiring's "driven")
for key in sorted(script.get("station", {})):  # the radio as the HAL will find it
    network.station[key] = script["station"][key]
for key in sorted(script.get("machine", {})):  # the chip as the HAL will find it, e.g. {"adc_calibrated": {...}}
    getattr(machine, key).update(script["machine"][key])
try:
    hal = open_hal(script["hw"])
except ValueError as exc:  # FieldError is one
    refused = {"error": str(exc)}
    if machine.history or machine.watchdog["timeout"] is not None:  # what a refused wiring must not leave
        refused["driven"] = {str(pin): machine.history[pin] for pin in sorted(machine.history)}
        refused["wdt_ms"] = machine.watchdog["timeout"]
    print(json.dumps(refused))
    sys.exit(0)
ntp_server = None


def ntp_serve(port):
    global ntp_server
    ntp_server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ntp_server.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    ntp_server.settimeout(5)


def ntp_answer(unix_s):
    data, address = ntp_server.recvfrom(512)
    packet = bytearray(48)
    packet[0] = 0x24  # LI 0, VN 4, mode 4 (server)
    packet[1] = 2
    packet[24:32] = data[40:48]
    struct.pack_into(">II", packet, 40, (unix_s + 2208988800) & 0xFFFFFFFF, 0)
    ntp_server.sendto(packet, address)


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
    elif name == "bus_time":  # the 1-Wire bus's resets and time since the last bus_time (or boot)
        result = {"resets": onewire.bus["resets"], "us": onewire.bus["us"]}
        onewire.bus["resets"] = 0
        onewire.bus["us"] = 0
    elif name == "wifi":
        gateway = args[0]
        network.station["connected"] = gateway is not None
        network.station["ifconfig"] = ("0.0.0.0", "0.0.0.0", gateway or "0.0.0.0", "0.0.0.0")
        result = None
    elif name == "station":
        for key in sorted(args[0]):
            network.station[key] = args[0][key]
        result = None
    elif name == "disconnected":
        network.disconnected(args[0])
        result = None
    elif name == "got_ip":
        network.got_ip(args[0])
        result = None
    elif name == "network":
        result = {"calls": network.station["calls"], "active": network.station["active"],
                  "hostname": network.hostname()}
        network.station["calls"] = []
    elif name == "ticks":
        for now_ms in range(args[0], args[1], 100):
            hal.poll(now_ms)
        result = None
    elif name == "repeat":  # ["repeat", n, [method, args...], ...]: the HAL methods n times over, no result kept
        for _ in range(args[0]):
            for call in args[1:]:
                getattr(hal, call[0])(*call[1:])
        result = None
    elif name == "heap":  # the bytes in use after a collection: what the steps before kept
        gc.collect()
        result = gc.mem_alloc()
    elif name == "reads":
        result = network.station["reads"]
        network.station["reads"] = []
    elif name == "ifconfig_only":
        network.ifconfig_only()
        result = None
    elif name == "clock":
        result = getattr(hal.clock, args[0])()
    elif name == "ntp_port":
        hal.clock.port = args[0]
        ntp_serve(args[0])
        result = None
    elif name == "ntp_answer":
        ntp_answer(args[0])
        result = None
    elif name == "outputs":
        result = outputs()
    elif name == "pulls":
        result = {str(pin): machine.pulls[pin] for pin in sorted(machine.pulls)}
    elif name == "history":
        result = {str(pin): machine.history[pin] for pin in sorted(machine.history)}
    else:
        try:
            result = getattr(hal, name)(*args)
        except ValueError as exc:  # a driver's error the HAL names the field of (safe())
            result = {"raised": str(exc)}
    results.append(result)
print(json.dumps(results))
