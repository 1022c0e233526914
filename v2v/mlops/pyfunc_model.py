"""The model file MLflow logs with every generator ("models from code": the model is this file, not a pickled
object); loading it needs this package importable. See :class:`v2v.mlops.registry.GeneratorModel`."""

from mlflow.models import set_model

from v2v.mlops.registry import GeneratorModel

set_model(GeneratorModel())
