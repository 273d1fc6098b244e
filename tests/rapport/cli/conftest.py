"""What the command-line tests share: a database the commands find through the
environment, as a user's shell would give it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from rapport.services.settings import get_settings
from storage.db import make_engine
from storage.migrate import upgrade_database


@pytest.fixture
def cli_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A current SQLite database in RAPPORT_DATABASE_URL, times in Asia/Shanghai."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    monkeypatch.setenv("RAPPORT_TIMEZONE", "Asia/Shanghai")
    get_settings.cache_clear()
    engine = make_engine(url)
    upgrade_database(engine)
    yield engine
    get_settings.cache_clear()
