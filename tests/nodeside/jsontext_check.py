# Node side of tests/test_node_jsontext.py: the strict JSON syntax check of a PUT body, on any runtime.
#   jsontext_check.py FILE   FILE holds one body a line, in hex; prints one JSON line per body: [what, at]
#                            ("" when the body is JSON), then the FieldError check() raises for the last body
import binascii
import json
import sys

from loadmesh.core.errors import FieldError
from loadmesh.node import jsontext

body = b""
with open(sys.argv[1]) as source:
    for line in source:
        body = binascii.unhexlify(line.strip())
        print(json.dumps(list(jsontext.first_fault(body))))
try:
    jsontext.check(bytearray(body), "heating")  # as the HTTP server hands a body over: one buffer
    print(json.dumps(None))
except FieldError as exc:
    print(json.dumps(str(exc)))
