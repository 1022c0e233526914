"""The Prefect test harness of the flow tests: one server and database for the whole session.

Tests that run a flow in this process ask for it (``@pytest.mark.usefixtures("prefect_harness")``, or a
fixture of theirs does), which also puts them in the e2e tier (tests/conftest.py). Started by the first such
test, it serves every later one (each reads back only its own flow run's logs and artifacts) and is stopped
cleanly when the session ends; tests/pipelines/test_schedule.py uses a real `prefect server start` instead.
"""

from collections.abc import Iterator

import pytest
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect server and database, the API of in-process flow runs until the session ends."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
