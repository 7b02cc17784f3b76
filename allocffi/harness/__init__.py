"""allocffi.harness: the ``allocffi`` command, apart from the library it measures.

``cli`` parses the command line; each command has its own module or package: ``bench/``,
``compare``, ``report``, ``capabilities`` (``allocffi list``), ``run/``, ``trace/``,
``calibrate``, ``numpy_bench/``. ``core/`` is what several commands share (errors and exit
statuses, child processes, launching a measured program, statistics and significance, machine
information, output files, number formats, plotting). ``_engine`` is the harness's compiled
module (the C engine, calibration and traces of csrc/include/afbench.h).

The library (``import allocffi``) never imports this package.
"""
