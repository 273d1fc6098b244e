"""Engines for the configured database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from tests.factories import add_customer


def test_a_database_error_does_not_show_the_bound_parameters(engine: Engine) -> None:
    """A failed statement's message names the statement, never the personal data bound
    to it (SQLAlchemy prints parameters in errors and logs unless told not to)."""
    customer = {"name": "王芳", "email": "wang.fang@example.cn", "phone": "+86 (138) 8183-6553"}
    add_customer(engine, "c1", **customer)
    with pytest.raises(IntegrityError) as raised:
        add_customer(engine, "c1", **customer)
    message = str(raised.value)
    assert "INSERT INTO customers" in message
    assert not any(value in message for value in customer.values()), message
