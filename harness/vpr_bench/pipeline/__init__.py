"""Run orchestration: from a command's options to evaluation jobs and training runs.

* :mod:`~vpr_bench.pipeline.plan`: ``vpr-bench run`` resolved once into a :class:`RunPlan`
  (methods with their resolved configs, the dataset target, the device).
* :mod:`~vpr_bench.pipeline.jobs`: the one resolver of evaluation jobs (:func:`resolve_job`).
* :mod:`~vpr_bench.pipeline.execute`: carries a plan out (baselines, training, PCA,
  evaluation, records).
* :mod:`~vpr_bench.pipeline.released`: evaluating released weights (``--checkpoint``).
* :mod:`~vpr_bench.pipeline.eval_request`: ``vpr-bench eval`` by name.

Nothing here is imported by the plugin layer, ``data``, ``eval`` or ``train``; this package is
where they meet.
"""
