"""A schemathesis run against the served OpenAPI document, with a valid API key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.serve import serve

pytestmark = pytest.mark.slow

ST = str(Path(sys.executable).with_name("st"))
EXAMPLES = os.environ.get("SIGNOFF_SCHEMATHESIS_EXAMPLES", "40")


def test_api_never_errors_and_keeps_its_schema(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        result = subprocess.run(
            [
                ST,
                "run",
                f"{server.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {server.api_key}",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,"
                "response_schema_conformance,response_headers_conformance",
                "--max-examples",
                EXAMPLES,
                "--seed",
                "20261123",
                "--generation-database",
                "none",
                "--no-color",
                # The long-poll waits up to 60 s by design; tests/integration covers it.
                "--exclude-path-regex",
                "/wait$",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        server_errors = [line for line in server.lines if "Traceback" in line or " 500 " in line]
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert server_errors == [], server_errors
