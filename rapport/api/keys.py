"""API keys: each has a name and a role; only a hash of the key is configured.

`RAPPORT_API_KEYS` holds a JSON list such as
`[{"name": "shop-east", "role": "ingest", "sha256": "…"}]`; `rapport api-key` makes a
new random key and prints the entry for it. A request names its key in the
`X-API-Key` header (or `Authorization: Bearer …`). Keys are long random strings, so a
plain SHA-256 is enough to keep a leaked configuration from revealing them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Literal

Role = Literal["ingest", "staff", "admin"]
ROLES: tuple[Role, ...] = ("ingest", "staff", "admin")


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: Role
    sha256: str


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key(name: str, role: Role) -> tuple[str, ApiKey]:
    """A fresh random key and its configuration entry."""
    key = "rk_" + secrets.token_urlsafe(32)
    return key, ApiKey(name, role, key_hash(key))


def parse_keys(configured: str) -> list[ApiKey]:
    """The keys of `RAPPORT_API_KEYS`; raises ValueError naming what is wrong."""
    if not configured.strip():
        return []
    try:
        entries = json.loads(configured)
    except json.JSONDecodeError as error:
        raise ValueError(f"RAPPORT_API_KEYS is not JSON: {error}") from None
    if not isinstance(entries, list):
        raise ValueError("RAPPORT_API_KEYS must be a JSON list of {name, role, sha256}")
    keys = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) != {"name", "role", "sha256"}:
            raise ValueError(f"RAPPORT_API_KEYS entry {number}: needs exactly name, role, sha256")
        if entry["role"] not in ROLES:
            raise ValueError(f"RAPPORT_API_KEYS entry {number}: role must be one of {ROLES}")
        keys.append(ApiKey(str(entry["name"]), entry["role"], str(entry["sha256"]).lower()))
    return keys


def find_key(keys: list[ApiKey], presented: str) -> ApiKey | None:
    """The configured key matching `presented`, compared in constant time."""
    digest = key_hash(presented)
    found = None
    for key in keys:
        if hmac.compare_digest(key.sha256, digest):
            found = key
    return found
