"""Schema creation and upgrades through Alembic (`rapport db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to `engine` without any alembic.ini on disk."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Brings the schema to `revision`; safe to run on an up-to-date database."""
    with engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


class SchemaOutOfDate(RuntimeError):
    """The database schema is missing or behind the code: `rapport db upgrade` fixes it."""


def check_schema(engine: Engine) -> None:
    """Raises `SchemaOutOfDate` unless the database is at the newest migration."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != script.get_current_head():
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing'}, code needs "
            f"{script.get_current_head()}: run `rapport db upgrade`"
        )
