"""Where generators registered before :mod:`v2v.mlops` existed find their class: the model-code file MLflow stored
with them imports ``v2v.registry.GeneratorModel``. New code imports :mod:`v2v.mlops.registry`."""

from v2v.mlops.registry import GeneratorModel

__all__ = ["GeneratorModel"]
