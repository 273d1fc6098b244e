"""Thin Prefect flows over Rapport's plain functions.

Importing this package settles Prefect's defaults before Prefect is imported: no
usage telemetry from the server (operations may run it where nothing leaves the
network), unless the environment says otherwise.
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
