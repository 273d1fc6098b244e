"""Shared fixtures: a fresh, migrated database on SQLite and on PostgreSQL.

PostgreSQL comes from `RAPPORT_TEST_POSTGRES_URL` (`.ci/run` starts one). Outside CI,
without that variable, the PostgreSQL cases are skipped with a reason in the output;
in CI they fail instead, so a missing server can never pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Before anything imports Prefect: no telemetry from the test API server, and its
# own logging only for what is critical (its shutdown otherwise logs tracebacks).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "CRITICAL")
# Staff-facing output in English unless a test chooses zh-CN (the product's default):
# most tests read the English msgids; tests/rapport/services/test_staff_language.py
# and its neighbours check the Chinese.
os.environ.setdefault("RAPPORT_STAFF_LOCALE", "en")

import pytest  # noqa: E402
from sqlalchemy import Engine, text

from storage.db import make_engine
from storage.migrate import upgrade_database
from tests.loopback import SmtpScript, SmtpServer, reserve_port

POSTGRES_URL = os.environ.get("RAPPORT_TEST_POSTGRES_URL")


def postgres_url() -> str:
    """The test server's URL, or a skip (a failure in CI) when none is configured."""
    if POSTGRES_URL:
        return POSTGRES_URL
    if os.environ.get("CI"):
        pytest.fail("CI must set RAPPORT_TEST_POSTGRES_URL (see .ci/run)")
    pytest.skip("PostgreSQL tests skipped: RAPPORT_TEST_POSTGRES_URL is not set")


def fresh_engine(backend: str, tmp_path: Path) -> Engine:
    """An engine on an empty database of `backend`, migrated to the newest schema."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'rapport.db'}")
    else:
        engine = make_engine(postgres_url())
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade_database(engine)
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Each test using it runs once per database."""
    engine = fresh_engine(request.param, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Prefect's test harness (a fresh API on a temporary database), started once for
    the session (about 10 s alone, nearly a minute on a loaded 2-core machine); no
    heartbeat thread, so sync flows end at once."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    no_heartbeat = temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})
    with prefect_test_harness(server_startup_timeout=180), no_heartbeat:
        yield


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpScript, SmtpServer]]:
    """A recording SMTP server on 127.0.0.1, scripted through the returned `SmtpScript`."""
    script = SmtpScript()
    server = SmtpServer(script, reserve_port())
    server.start()
    yield script, server
    server.stop()
