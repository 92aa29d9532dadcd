"""``list_calls`` answers what its filters say, page after page, on both databases: the same calls as
filtering and sorting every row in Python. The number filter especially, since 0009 finds a page from each
end's first calls (a call whose two ends are the same number, a number on every call, pages cut by
``before_id`` and a narrowing filter behind it)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, text

from gateway.ids import new_id
from gateway.store import calls as call_store
from gateway.store.db import Database
from gateway.store.tables import calls

OWN = "+14155550100"  # on most calls: a company's caller id
NUMBERS = [OWN, "+14155550111", "+12125550122", None]
STATUSES = ["completed", "failed", "in_progress", None]
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def dataset(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        own_first = rng.random() < 0.7
        other = rng.choice(NUMBERS)
        rows.append(
            {
                "id": new_id("call"),
                "vendor": rng.choice(["graph8", "livekit"]),
                "vendor_call_id": f"v{i}",
                "status": rng.choice(STATUSES),
                "direction": rng.choice(["inbound", "outbound"]),
                "from_number": OWN if own_first else other,
                "to_number": other if own_first else rng.choice(NUMBERS),
                "created_at": T0 + timedelta(minutes=rng.randrange(600)),
            }
        )
    return rows


async def stored(db: Database, rows: list[dict[str, Any]]) -> str:
    """``rows`` as the calls of a new tenant: its id."""
    tenant = f"ten_{uuid.uuid4().hex[:12]}"
    source = f"src_{uuid.uuid4().hex[:12]}"
    async with db.writing() as conn:
        await conn.execute(
            text("INSERT INTO tenants (id, name, created_at) VALUES (:id, 'list', :t)"),
            {"id": tenant, "t": T0},
        )
        await conn.execute(
            text(
                "INSERT INTO sources (id, tenant_id, name, vendor, verification, enabled, created_at,"
                " updated_at) VALUES (:id, :tenant, 'list', 'graph8', '{}', true, :t, :t)"
            ),
            {"id": source, "tenant": tenant, "t": T0},
        )
        full = [
            {
                **row,
                "tenant_id": tenant,
                "source_id": source,
                "data": {},
                "stamps": {},
                "version": 1,
                "updated_at": row["created_at"],
            }
            for row in rows
        ]
        if full:
            await conn.execute(insert(calls), full)
    return tenant


def expected(rows: list[dict[str, Any]], filters: dict[str, Any], limit: int) -> list[str]:
    def keep(row: dict[str, Any]) -> bool:
        number = filters.get("number")
        return (
            (number is None or number in (row["from_number"], row["to_number"]))
            and all(row[k] == filters[k] for k in ("status", "vendor", "direction") if k in filters)
            and ("since" not in filters or row["created_at"] >= filters["since"])
            and ("until" not in filters or row["created_at"] < filters["until"])
            and ("before_id" not in filters or row["id"] < filters["before_id"])
        )

    return sorted((r["id"] for r in rows if keep(r)), reverse=True)[:limit]


filters_strategy = st.fixed_dictionaries(
    {},
    optional={
        "number": st.sampled_from([n for n in NUMBERS if n is not None] + ["+19995550000"]),
        "status": st.sampled_from([s for s in STATUSES if s is not None]),
        "vendor": st.sampled_from(["graph8", "livekit"]),
        "direction": st.sampled_from(["inbound", "outbound"]),
        "since": st.integers(0, 600).map(lambda m: T0 + timedelta(minutes=m)),
        "until": st.integers(0, 600).map(lambda m: T0 + timedelta(minutes=m)),
    },
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32),
    count=st.integers(0, 120),
    queries=st.lists(st.tuples(filters_strategy, st.integers(1, 30)), min_size=1, max_size=8),
)
def test_every_page_is_what_the_filters_say(
    db_url: str, seed: int, count: int, queries: list[tuple[dict[str, Any], int]]
) -> None:
    rows = dataset(seed, count)

    async def run() -> None:
        db = Database(db_url)
        try:
            tenant = await stored(db, rows)
            await stored(db, dataset(seed + 1, 20))  # another tenant's calls, with the same numbers
            for filters, limit in queries:
                cursor: dict[str, Any] = {}
                walked: list[str] = []
                for _ in range(count // limit + 2):  # every page, as the API's cursor walks them
                    async with db.reading() as conn:
                        page = await call_store.list_calls(conn, tenant, **filters, **cursor, limit=limit)
                    ids = [row["id"] for row in page]
                    assert ids == expected(rows, {**filters, **cursor}, limit)
                    walked += ids
                    if len(ids) < limit:
                        break
                    cursor = {"before_id": ids[-1]}
                assert walked == expected(rows, filters, len(rows))
        finally:
            await db.dispose()

    asyncio.run(run())
