"""The scheduled retraining deployment, served against a Prefect server.

Cron schedules need a running Prefect server (the temporary server an ad-hoc flow run starts never
fires them). Start one bound to this machine, point ``PREFECT_API_URL`` at it, then serve::

    prefect server start --host 127.0.0.1 --port 4200          # SQLite under $PREFECT_HOME; keep it running
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    v2v serve                                                  # registers v2v-retrain/<deployment>, runs it on cron

``orchestrate.cron``/``orchestrate.timezone``/``orchestrate.deployment`` in ``params.yaml`` set the
schedule; ``v2v serve --register-only`` registers the deployment and returns (runs then wait for a
``v2v serve`` process to execute them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from v2v.config import Config
from v2v.mlops.tracking import health_failure

START_SERVER = "prefect server start --host 127.0.0.1 --port 4200"


class PrefectApiError(RuntimeError):
    """The Prefect API is not set, not a URL, or does not answer; the message names it and what to do."""


def prefect_api_url() -> str | None:
    """``PREFECT_API_URL`` as Prefect resolves it (environment, profile), or None when unset."""
    from prefect.settings import PREFECT_API_URL

    value = PREFECT_API_URL.value()
    return str(value) if value else None


def check_prefect_api(required: bool = False, timeout: float = 5.0) -> str | None:
    """The Prefect API URL after checking that it answers; None when unset and not ``required``.

    Unset is fine for ad-hoc runs (Prefect starts a temporary server); schedules need a real one.
    """
    url = prefect_api_url()
    if not url:
        if required:
            raise PrefectApiError(
                "cron schedules need a running Prefect server and PREFECT_API_URL pointing at it: run "
                f"`{START_SERVER}` in another terminal, then `export PREFECT_API_URL=http://127.0.0.1:4200/api`"
            )
        return None
    if not url.startswith(("http://", "https://")):
        raise PrefectApiError(
            f"PREFECT_API_URL={url!r} is not an http(s) URL; set it to http://127.0.0.1:4200/api (a server started "
            f"with `{START_SERVER}`) or unset it for ad-hoc runs with a temporary server"
        )
    if (reason := health_failure(url, timeout)) is not None:
        raise PrefectApiError(
            f"the Prefect API at {url} is not reachable ({reason}); start the server (`{START_SERVER}`) or fix "
            "PREFECT_API_URL; unset PREFECT_API_URL to run ad hoc with a temporary server instead"
        )
    return url


def retrain_deployment(root: Path, cfg: Config) -> Any:
    """The retraining flow as a deployment with the cron schedule of ``cfg.orchestrate``."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from pipelines.retrain import v2v_retrain

    oc = cfg.orchestrate
    return v2v_retrain.to_deployment(
        name=oc.deployment,
        schedules=[Cron(oc.cron, timezone=oc.timezone)],
        parameters={"root": str(root)},
        description=f"v2v retraining of {root} on cron {oc.cron!r} ({oc.timezone}): rerun what changed, promote "
        f"only a better model ({cfg.promote.model_name}@{cfg.promote.alias}).",
        tags=["v2v", "retrain"],
        entrypoint_type=EntrypointType.MODULE_PATH,  # pipelines.retrain.v2v_retrain: works from any folder
    )


def register(root: Path, cfg: Config) -> UUID:
    """Register (create or update) the scheduled deployment on the Prefect server; returns its id."""
    check_prefect_api(required=True)
    deployment_id: UUID = retrain_deployment(root, cfg).apply()
    return deployment_id


def serve(root: Path, cfg: Config) -> None:
    """Register the deployment and execute its scheduled runs in this process until interrupted."""
    from prefect import serve as prefect_serve

    check_prefect_api(required=True)
    prefect_serve(retrain_deployment(root, cfg), limit=1)  # one retraining at a time
