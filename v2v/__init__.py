"""v2v: video-to-video synthesis (vid2vid) as a reproducible DVC + Prefect + MLflow pipeline."""

import os as _os

# Telemetry is off everywhere unless the user explicitly turns it back on.
for _key, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}.items():
    _os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
