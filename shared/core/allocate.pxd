# C types for allocate.py in the compiled build (allocate.py stays plain
# Python). Currents are bounded far below 2^31 by site.parse(); sums over
# loads and phases stay below 2^30; long long leaves room either way.
# cdivision stays off: // and % keep Python's rounding.

import cython

from .site cimport Site, constraint_reason

cdef long long _CONTINUOUS
cdef long long _SOLAR_PRIORITY
cdef long long _SOLAR_ONLY
cdef long long _EXCESS
cdef long long _OFF
cdef long long _INDEX_BITS
cdef long long _INDEX_MASK
cdef long long _PRIORITY_SPAN
cdef long long _MAX_PRIORITY

# cpdef for its typed locals: the two dicts are filled by index, in C.
@cython.locals(targets=list, reasons=list, index=Py_ssize_t, alloc=dict, why=dict)
cpdef dict allocate(Site model, reserve_ma=*, active=*)

@cython.locals(ahead_ma=cython.longlong, rise_ma=cython.longlong, alloc=list, reason=list)
cpdef tuple targets_ma(Site model)

@cython.locals(count=Py_ssize_t, index=Py_ssize_t, con=Py_ssize_t, held=cython.longlong,
               room_left=cython.longlong, need=cython.longlong, mode=cython.longlong, phases=cython.longlong,
               budget=cython.longlong, solar_ma=cython.longlong, threshold_ma=cython.longlong,
               keep_ma=cython.longlong, fits=cython.bint, stale=cython.bint, metered=cython.bint, key=cython.longlong,
               rank=cython.longlong, drawn=cython.longlong, start=cython.longlong, rise_ma=cython.longlong,
               taken_ma=cython.longlong, least_ma=cython.longlong, solar_mins_ma=cython.longlong,
               earlier=Py_ssize_t, on_surplus=list, ordered=Py_ssize_t, granted=Py_ssize_t, place=Py_ssize_t,
               members=Py_ssize_t, rises=Py_ssize_t, per_mode=list,
               alloc=list, reason=list, room=list, load_cons=list, urgency=list, online=list, demand=list,
               reserve=list, priority=list, active=list, order=list, load_phases=list, scarce=list, admitted=list,
               min_ma=list, max_ma=list, counts=list, full=list, moving=list, rising=list, cons=list, preferred=list, ranks=list,
               draw_ma=list)
cdef tuple _targets(Site model, long long ahead_ma)

@cython.locals(index=Py_ssize_t, mode=cython.longlong, need=cython.longlong, phases=cython.longlong,
               budget=cython.longlong, urgency=list, min_ma=list, load_phases=list)
cdef bint _short(Site model, list granted, long long solar_ma, long long threshold_ma) except? -1

@cython.locals(index=Py_ssize_t, top=cython.longlong, drawn=cython.longlong, phases=cython.longlong,
               total=cython.longlong, urgency=list, online=list, demand=list, draw_ma=list, max_ma=list,
               load_phases=list)
cdef long long _most_rise(Site model) except? -1

@cython.locals(has_solar=cython.bint, index=Py_ssize_t, con=Py_ssize_t, first=Py_ssize_t,
               gaps=Py_ssize_t, next_gap=Py_ssize_t, left=Py_ssize_t, before=Py_ssize_t,
               top=cython.longlong, start=cython.longlong, movers=cython.longlong, phases=cython.longlong,
               solar_weight=cython.longlong, level=cython.longlong, delta=cython.longlong,
               room_left=cython.longlong, share=cython.longlong, floor=cython.longlong, stride=cython.longlong,
               back=cython.longlong, packed=cython.longlong, slot=Py_ssize_t, waiting=Py_ssize_t,
               load_cons=list, con_first=list, con_loads=list, load_phases=list, cap=list, by_gap=list, live=list, still=list, stopping=list, tight=list,
               low=list, step=list, candidates=list, cons=list)
cdef long long _fill(Site model, list rising, list alloc, list reason, list room, list counts, list full,
                     list moving, long long solar_ma) except? -1

@cython.locals(index=Py_ssize_t, con=Py_ssize_t, start=cython.longlong, top=cython.longlong,
               increment=cython.longlong, phases=cython.longlong, room_left=cython.longlong,
               rounds=cython.longlong, most=cython.longlong, stride=cython.longlong, taken=cython.longlong,
               solar_round=cython.longlong, kept=Py_ssize_t,
               load_cons=list, load_phases=list, cap=list, step=list, took=list, touched=list, cons=list)
cpdef long long _hand_back(Site model, list candidates, list alloc, list reason, list room, list per_round,
                           bint has_solar, long long solar_ma) except? -1

@cython.locals(start=cython.longlong, movers=cython.longlong, con=Py_ssize_t, cons=list)
cdef void _stop(Py_ssize_t index, long long level, list alloc, list moving, list counts, list load_cons)
