# C types for site.py in the compiled build (site.py stays plain Python).
# Site becomes an extension type: the allocation reads its lists through C
# struct fields instead of attribute lookups. Every int here is bounded by
# parse() far below 2^31; the lists and the dict stay Python objects.

cdef class Site:
    cdef public int phases
    cdef public int voltage_v
    cdef public list limit_ma
    cdef public int safety_pct
    cdef public long long import_limit_w
    cdef public long long excess_threshold_w
    cdef public long long meter_stale_ms
    cdef public int meter
    cdef public list meter_ma
    cdef public list unmanaged_ma
    cdef public long long surplus_ma
    cdef public list circuit_ids
    cdef public list circuit_parent
    cdef public list circuit_limit_ma
    cdef public list load_ids
    cdef public dict load_index
    cdef public list load_circuit
    cdef public list load_chain
    cdef public list load_phases
    cdef public list load_min_ma
    cdef public list load_max_ma
    cdef public list load_step_ma
    cdef public list load_priority
    cdef public list load_urgency
    cdef public list load_demand
    cdef public list load_online
    cdef public list load_active
    cdef public list load_draw_ma
    cdef public list load_reserve_ma
    cdef public list load_cons
    cdef public list con_capacity_ma
    cdef public list con_first
    cdef public list con_loads

    cpdef long long excess_threshold_ma(self)

# A C call from allocate._fill, which names a reason for every load a full constraint stops.
cpdef str constraint_reason(Site model, Py_ssize_t con)
