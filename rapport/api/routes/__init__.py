"""The API's endpoints, one `APIRouter` per OpenAPI tag.

Each module holds one tag's operations with their request and response models; the
role a tag needs is set on its router. What they share (settings, database, rules,
reaction worker) comes from `rapport.api.state`, the key check from
`rapport.api.security`.
"""

from __future__ import annotations

from fastapi import APIRouter

from rapport.api.routes import customers, intake, service, tasks, unsubscribe

ROUTERS: tuple[APIRouter, ...] = (
    service.router,
    intake.router,
    customers.router,
    tasks.router,
    unsubscribe.router,
)
