"""The two reference servers the ingest figure is compared with, each served by uvicorn exactly as
``callgate serve`` is served (httptools and uvloop, which uvicorn picks by default when installed;
``log_level="warning"``, no access log), each in its own process:

* ``bare``: Starlette, ``POST /hooks/{source_id}`` reads the body and answers 202. The ceiling of the
  HTTP stack callgate is built on.
* ``naive``: what a first, straightforward webhook receiver looks like: per request it verifies the
  Standard Webhooks signature with the ``standardwebhooks`` package, parses the JSON, opens one SQLModel
  ``AsyncSession`` over aiosqlite, inserts the raw event, upserts the call (``INSERT … ON CONFLICT DO
  UPDATE``) and commits: one transaction, one fsync, per webhook. SQLite WAL, ``synchronous=FULL``.
  ``source_id`` names the vendor, which says where the call id is in the body.

    python -m bench.reference bare --port 9001
    python -m bench.reference naive --port 9002 --database /tmp/naive.db --secret whsec_...
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from sqlalchemy import Column, LargeBinary, String, UniqueConstraint, event
from sqlalchemy.dialects.sqlite import insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def bare_hook(request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


def bare_app() -> Starlette:
    return Starlette(routes=[Route("/hooks/{source_id}", bare_hook, methods=["POST"])])


# --- the naive server -------------------------------------------------------------------------------


class NaiveBase(SQLModel, registry=registry()):  # its own metadata: not callgate's tables
    pass


class NaiveRawEvent(NaiveBase, table=True):
    __tablename__ = "naive_raw_events"
    id: int | None = Field(default=None, primary_key=True)
    vendor: str
    event_id: str = Field(unique=True)
    received_at: datetime
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class NaiveCall(NaiveBase, table=True):
    __tablename__ = "naive_calls"
    __table_args__ = (UniqueConstraint("vendor", "vendor_call_id"),)
    id: int | None = Field(default=None, primary_key=True)
    vendor: str
    vendor_call_id: str
    last_event: str = Field(sa_column=Column(String, nullable=False))
    events: int
    updated_at: datetime


def _call_and_event(vendor: str, doc: dict[str, Any]) -> tuple[str, str, str]:
    """(call id, event id, event type), read the way a hand-written receiver would, per vendor."""
    event_id = str(doc.get("id") or doc.get("event_id") or doc.get("eventId"))
    kind = str(doc.get("type") or doc.get("event") or doc.get("eventType"))
    data = doc.get("data") or {}
    if vendor == "graph8":
        call = data["room_name"]
    elif vendor == "voiceapi":
        call = doc["session_id"]
    elif vendor == "callsv1":
        call = doc["call"]["call_id"]
    elif vendor == "qualifier":
        call = data["call"]["id"]
    elif vendor == "voicecalls":
        call = data["id"]
    else:  # livekit
        call = (doc.get("room") or {}).get("sid") or doc["egressInfo"]["roomId"]
    return str(call), event_id, kind


def naive_app(database: str, secret: str) -> Starlette:
    engine: AsyncEngine = create_async_engine(f"sqlite+aiosqlite:///{database}")

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    webhook = Webhook(secret)

    async def hook(request: Request) -> Response:
        vendor = request.path_params["source_id"]
        body = await request.body()
        try:
            doc = webhook.verify(body, dict(request.headers))  # verifies, then json.loads the body
        except Exception:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        call_id, event_id, kind = _call_and_event(vendor, doc)
        now = datetime.now(UTC)
        async with AsyncSession(engine) as session:
            session.add(NaiveRawEvent(vendor=vendor, event_id=event_id, received_at=now, body=body))
            upsert = insert(NaiveCall).values(
                vendor=vendor, vendor_call_id=call_id, last_event=kind, events=1, updated_at=now
            )
            upsert = upsert.on_conflict_do_update(
                index_elements=["vendor", "vendor_call_id"],
                set_={"last_event": kind, "events": NaiveCall.events + 1, "updated_at": now},
            )
            await session.exec(upsert)
            await session.commit()
        return JSONResponse({"stored": event_id}, status_code=202)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.run_sync(NaiveBase.metadata.create_all)
        yield
        await engine.dispose()

    return Starlette(routes=[Route("/hooks/{source_id}", hook, methods=["POST"])], lifespan=lifespan)


def count_naive(database: str) -> int:
    """Raw events the naive server stored."""
    import sqlite3

    with sqlite3.connect(database) as conn:
        return int(conn.execute("SELECT count(*) FROM naive_raw_events").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("app", choices=["bare", "naive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", help="naive: the SQLite file")
    parser.add_argument("--secret", help="naive: the whsec_ secret it verifies with")
    args = parser.parse_args()
    if args.app == "bare":
        app = bare_app()
    else:
        if not args.database or not args.secret:
            parser.error("naive needs --database and --secret")
        app = naive_app(args.database, args.secret)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
