"""Schemathesis against the live app's /openapi.json: random valid and invalid requests to every operation.

No response may be a 5xx other than 503/504 (overload, never a bug), and every response must match what
the schema documents (status code, content type, body schema, headers). The app serves the tiny
random-weight checkpoints the other service tests use, so each generated request really runs a model.

CI runs a bounded number of examples per operation (CONDGEN_FUZZ_EXAMPLES, default 25); `make fuzz`
runs many more.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402  (schemathesis depends on hypothesis)
from schemathesis import checks as st_checks  # noqa: E402
from schemathesis.python import asgi as st_asgi  # noqa: E402

from app.main import create_app  # noqa: E402
from serve_helpers import settings_for  # noqa: E402

EXAMPLES = int(os.environ.get("CONDGEN_FUZZ_EXAMPLES", "25"))
# Overload answers are allowed: a full queue (503) or a passed deadline (504) is not a bug.
OVERLOAD = {503, 504}


@schemathesis.check
def no_server_error_but_overload(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 5xx is a failure unless it is 503/504; the detail of a 500 is shown to say which bug."""
    if response.status_code >= 500 and response.status_code not in OVERLOAD:
        raise AssertionError(f"{response.status_code} from {case.method} {case.formatted_path}: {response.text[:500]}")
    return None


@pytest.fixture(scope="module")
def live_schema(checkpoint_dir: Path) -> Iterator[Any]:
    # Small limits keep each generated request cheap; 64-row pad would make every forward 8x the work.
    app = create_app(settings_for(checkpoint_dir, max_batch_rows=4, max_samples=4, max_upload_bytes=64 * 1024,
                                  max_image_pixels=256 * 256))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # schemathesis runs the app's lifespan
    yield schema
    st_asgi.shutdown_lifespans()  # stop the inference queue it started


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 25, database=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation_holds_up_and_matches_its_schema(case: Any) -> None:
    case.call_and_validate(excluded_checks=[st_checks.not_a_server_error, st_checks.positive_data_acceptance],
                           additional_checks=[no_server_error_but_overload])
