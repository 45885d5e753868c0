"""The API against its own OpenAPI description: schemathesis generates requests for every
documented operation (fixed seed, short budget) and runs all its checks on every answer
(no 5xx, documented status codes, bodies and content types matching the schema, invalid data
rejected, valid data accepted...). Zero failures, not only zero 5xx.

Each operation is called with a key of a role the role table allows for it (the 401/403 paths
are the access tests' job). The live feed (``/alerts/stream``) is left out: it is an endless
event stream, which a request/response fuzzer would wait on forever; its behaviour is tested
against a real server in test_api_live.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.deps import MAX_WINDOW_DAYS
from api.security.roles import RULES, route_key
from api.settings import ApiSettings
from pak.timefmt import format_time, utcnow
from tests.api.accounts import api_key
from tracker.storage import open_storage

#: examples per operation: the whole run stays well under a minute
EXAMPLES = 15

ROLES = ("officer", "analyst", "admin")
STREAM = re.compile(r"/alerts/stream$")


def _documented_window(_ctx: object, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """``map_query``: a time window as its description says it must be (until after since,
    at most 92 days, ending no later than now), which JSON Schema cannot state for two
    parameters together; the fuzzer still varies everything else."""
    if not query or "since" not in query:
        return query
    now = utcnow()
    since = _time(query["since"], now)
    until = _time(query.get("until"), now) if "until" in query else now
    since = min(max(since, now - timedelta(days=MAX_WINDOW_DAYS - 1)), now - timedelta(hours=1))
    until = min(max(until, since + timedelta(seconds=1)), now)
    query["since"] = format_time(since)
    if "until" in query:
        query["until"] = format_time(until)
    return query


_documented_window.__name__ = "map_query"


def _time(value: Any, default: datetime) -> datetime:
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return default
    return t.astimezone(UTC) if t.tzinfo else default


#: Operations whose valid answers depend on rules JSON Schema cannot state: for them the
#: "schema-valid data must be accepted" check is off (every other check stays on).
SEMANTIC: dict[str, str] = {
    "POST /alerts/{alert_id}/status": "which of unit and outcome a status takes (dispatched "
    "needs a unit, closed an outcome) is one rule across fields",
    "POST /watchlist/import": "the body is CSV: its header and rows are checked line by line",
}


def _fuzz(op: schemathesis.APIOperation, headers: dict[str, str]) -> None:
    semantic = route_key(op.method.upper(), op.path) in SEMANTIC
    excluded = [positive_data_acceptance] if semantic else []

    @given(case=op.as_strategy())
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    run()


def test_api_conforms_to_its_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fuzz.sqlite3'}"
    with open_storage(url) as storage:
        storage.migrate()
        keys = {role: api_key(storage, f"fuzz-{role}", role) for role in ROLES}
        app = create_app(ApiSettings(db=url), storage=storage)
        app.state.storage = storage  # what the lifespan would set (the hub is not needed)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        schema.hook(_documented_window)
        failures: list[str] = []
        operations = 0
        for result in schema.get_all_operations():
            op = result.ok()
            if STREAM.search(op.path):
                continue
            operations += 1
            rule = RULES.get(route_key(op.method.upper(), op.path))
            key = None if rule is None else keys[next(r for r in ROLES if r in rule.roles)]
            headers = {"Authorization": f"Bearer {key}"} if key else {}

            try:
                _fuzz(op, headers)
            except (Exception, BaseExceptionGroup) as e:  # report every operation's failure
                failures.append(f"{op.method.upper()} {op.path}: {e}")
        assert operations >= 15
        assert not failures, "\n\n".join(failures)
