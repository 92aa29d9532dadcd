"""Schema migrations, run programmatically (``callgate migrate``, ``serve`` on start, the tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    config = Config(str(HERE / "alembic.ini"))
    config.set_main_option("script_location", str(HERE / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Blocking; env.py runs its own event loop, so call this from a thread inside async code."""
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


def downgrade(url: str, revision: str) -> None:
    """Back to ``revision`` (``base``: nothing). For the round-trip tests and an operator's way back."""
    command.downgrade(alembic_config(url), revision)
