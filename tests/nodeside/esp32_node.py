# Node side of tests/test_cli_status.py: a node's main.py on the ESP32 HAL, machine and network faked, run in
# the current folder (its file system), with the Wi-Fi station as a file scripts it.
#   esp32_node.py STATION   JSON: what network.station holds (e.g. {"connected": true, "ifconfig": [...]})
import json
import sys

import network

with open(sys.argv[1]) as source:
    network.station.update(json.load(source))

from loadmesh.node import runtime  # after the station is scripted: the HAL reads it at boot

runtime.main()
