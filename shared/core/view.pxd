# C types for view.py in the compiled build (view.py stays plain Python).

import cython

from .site cimport Site

@cython.locals(index=Py_ssize_t)
cpdef str digest(Site model)

cdef str _row(Site model, Py_ssize_t index)
