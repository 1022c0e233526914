"""The MLOps wing: what records, compares and ships the pipeline's work, above the ML core.

* :mod:`~v2v.mlops.tracking` — one MLflow run per stage execution under a parent run per pipeline execution;
* :mod:`~v2v.mlops.registry` — the generator as an MLflow ``pyfunc`` model, registration and the champion rule
  (:mod:`~v2v.mlops.pyfunc_model` is the file MLflow stores as the model's code);
* :mod:`~v2v.mlops.dvcfile` — ``dvc.yaml`` read as data (stages, deps, params, outs, order);
* :mod:`~v2v.mlops.compare` — pipeline executions side by side (``v2v compare``);
* :mod:`~v2v.mlops.plots` — ``dvc plots`` drawn offline as PNG files.

Arrows run one way: stages, ``pipelines/`` and the CLI import this package; it imports the core (config, paths,
io, data, models, generation) and nothing of the stages. ``tests/test_layout.py`` checks it.
"""
