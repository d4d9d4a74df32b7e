"""The tensor-product benchmark (`eqc bench`) and the project's timing scripts, installed as ``eqdsl.benchmarks``.

Modules, by job:

* ``suite``: the six problems as data and their memory floors (imports neither torch nor numpy);
* ``timing``: timed calls, peak memory, the device's copy bandwidth;
* ``impl``: an implementation as the benchmark calls it, and eqdsl's own two;
* ``anchors``: the adapters of e3nn, cuEquivariance and OpenEquivariance;
* ``registry``: which implementations exist, which are installed (a missing one is named, not fatal);
* ``verify``: values and first and second derivatives against the float64 reference;
* ``runner``: one problem, every implementation: verified, then timed;
* ``conv``: the problems as message-passing convolutions (``eqc bench --conv``);
* ``report`` (the markdown table, targets against the anchors), ``merge`` (``--merge``), ``plot``;
* ``command``: the ``eqc bench`` subcommand;
* ``front_end`` and ``solve_bases``: front-end and basis-solve timing of the shipped specs
  (``python -m eqdsl.benchmarks.front_end``, ``python -m eqdsl.benchmarks.solve_bases``).

Nothing here is imported by the compiler: ``eqc bench`` imports ``command`` when it runs.
"""
