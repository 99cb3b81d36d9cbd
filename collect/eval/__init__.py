"""evalframes' eval app: ``python -m collect CONFIG.yaml`` (also ``python -m collect.eval``).

It runs an RLinf-style evaluation on Dask env workers and records every env with the
recording library around it (:mod:`collect`): the config (:mod:`collect.eval.config`, with
:mod:`~collect.eval.config_compose` and :mod:`~collect.eval.config_schema`), the worker
placement (:mod:`collect.eval.placement`), the runner (:mod:`collect.eval.runner`), the command
line (:mod:`collect.eval.cli`) and the built-in envs (:mod:`collect.eval.envs`). Data flows one
way: this package imports the library, never the reverse.
"""
