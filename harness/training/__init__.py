"""The training side: everything that imports Keras or JAX, and the loop that runs them.

`scheduler.run(specs, options)` trains every run not stored yet: `groups` forms groups of runs,
a place (`places`: this process or worker processes; `cluster`: Ray tasks) trains each group
with one of two trainers (`vectorized`: one compiled JAX program; `per_run`: Keras `fit`), and
`rows` makes a run's rows the same way for both. Importing this package imports nothing heavy.
"""

# True in `python -m harness` (set by harness/__main__.py): the process is the harness's own, so what
# importing Keras made is frozen out of the garbage collector's walks, and matplotlib's pyplot, which
# Keras imports for its image galleries and the harness never uses, loads only if something uses it
# (`backend.bring_up`). A script's or notebook's process is left as Keras makes it.
OWN_PROCESS = False
