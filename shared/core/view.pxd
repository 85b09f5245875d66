# C types for view.py in the compiled build (view.py stays plain Python).

import cython

from .site cimport Site

@cython.locals(index=Py_ssize_t)
cpdef str digest(Site model)

@cython.locals(min_ma=cython.longlong, max_ma=cython.longlong, step_ma=cython.longlong, priority=cython.longlong,
               reserve_ma=cython.longlong)
cdef str _row(Site model, Py_ssize_t index)

@cython.locals(limits=list, first=cython.longlong, second=cython.longlong, third=cython.longlong)
cdef str _circuit(Site model, Py_ssize_t index)
