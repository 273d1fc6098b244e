"""The committed OpenAPI document is what the API does: schemathesis, driven by
`docs/openapi.json` alone, runs every check it has against a real uvicorn server.

Its checks include: no 5xx; every status code documented; bodies, content types and
headers as documented; schema-valid requests accepted and schema-invalid ones refused;
`Allow` on 405; keys required where the document says so. It runs its coverage,
fuzzing and stateful phases in deterministic mode (the same requests on every run),
bounded by the examples per operation. `pytest -s` prints schemathesis's summary.
`tests/rapport/api/schemathesis.toml` holds its one per-operation setting, with why.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.paths import ROOT
from tests.rapport.api import test_api, test_api_fuzz

api = test_api.api  # the fixture: a uvicorn server on a pre-bound socket, a key per role
Api = test_api.Api

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES_PER_OPERATION = 40  # about 30 s for the whole run on 2 cores


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_failure(api: Api, engine: Engine, tmp_path: Path) -> None:
    test_api_fuzz.seed_rows(engine)  # customers c1 and c2, and open tasks
    report = tmp_path / "report.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
            "run",
            str(ROOT / "docs" / "openapi.json"),
            "--url",
            api.url,
            "--header",
            f"X-API-Key: {api.keys['admin']}",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--generation-deterministic",
            "--workers",
            "1",
            "--request-timeout",
            "15",
            "--no-color",
            "--report-json-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    output = run.stdout + run.stderr
    print("\nschemathesis: " + output[output.find("SUMMARY") :])
    assert report.exists(), output[-3_000:]
    result = json.loads(report.read_text(encoding="utf-8"))
    failures = [json.dumps(failure, ensure_ascii=True)[:1_500] for failure in result["failures"]]
    assert result["exit_code"] == 0 and not failures, "\n".join(failures)
    assert result["operations"]["tested"] == result["operations"]["total"] == 10
    assert result["errors"] == []
