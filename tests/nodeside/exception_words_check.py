# Node side of tests/test_node_exception_words.py: exceptions as /status and the console say them, on any runtime.
#   exception_words_check.py   prints one JSON string per exception raised below, in order
import json

from loadmesh.node import hal


def said(make):
    try:
        make()
    except Exception as exc:  # what a halt or a failed sync round catches
        return hal.exception_words(exc)
    return None


def out_of_memory():
    raise MemoryError


def refused():
    raise ValueError("no 200 answer: 'HTTP/1.0 404'")


def unreachable():
    raise OSError(113)


def bad_index():
    return [][1]


for make in (out_of_memory, refused, unreachable, bad_index):
    print(json.dumps(said(make)))
