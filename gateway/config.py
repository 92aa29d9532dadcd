"""Configuration from ``CALLGATE_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLGATE_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/callgate.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: str | None = None  # base of hook URLs; defaults to http://host:port
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # --- the edge (gateway.edge): what one connection may cost before the app sees a request ---
    max_request_line_bytes: int = Field(default=8 * 1024, ge=256)  # longer: 414
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)  # all header fields together; more: 431
    header_timeout_seconds: float = Field(default=10.0, gt=0)  # the whole head, from connect or last answer
    body_timeout_seconds: float = Field(default=30.0, gt=0)  # the whole body, from the end of the head
    keep_alive_seconds: float = Field(default=5.0, gt=0)  # an idle connection between requests
    max_connections: int = Field(default=1000, ge=1)  # connections and requests at once; more: 503
    default_region: str = Field(default="US", min_length=2, max_length=2)  # for numbers without a +
    source_cache_seconds: float = Field(default=5.0, ge=0)
    auto_migrate: bool = True  # serve upgrades the schema on start (turn off when several processes share PG)
    bootstrap_tenant: bool = True  # on an empty database, create a tenant and print its API key once
    secret_key: str | None = None  # signs pagination cursors; generated and kept in the database when unset
    writer_max_batch: int = Field(default=256, ge=1, le=10_000)
    # PostgreSQL: group-commit batches in flight at once, each on its own connection (SQLite: always one)
    writer_lanes: int = Field(default=4, ge=1, le=64)
    sqlite_synchronous: Literal["FULL", "NORMAL"] = (
        "FULL"  # FULL: an acknowledged webhook survives power loss
    )
    sqlite_busy_timeout_ms: int = Field(
        default=10_000, ge=0
    )  # how long a writer waits for the lock, then 503
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # --- outbound delivery (the outbox worker) ---
    worker: bool = True  # serve runs the outbox worker in the same process
    # the worker's HTTP requests run in a child process (another core); false: in the worker's own process
    delivery_process: bool = True
    delivery_timeout_seconds: float = Field(default=15.0, gt=0, le=120)
    retry_schedule_seconds: list[float] = Field(
        default=[0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000], min_length=1, max_length=30
    )
    retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    throttle_floor_seconds: float = Field(
        default=60.0, ge=0
    )  # 429/502/503/504 and timeouts wait at least this
    disable_after_seconds: float = Field(default=5 * 86_400, gt=0)  # continuous failure, then disabled
    secret_rotation_seconds: float = Field(default=86_400, ge=0)  # the old secret keeps signing this long
    allow_private_targets: bool = False  # SSRF: allow loopback/private/... subscription URLs
    allowed_target_cidrs: list[str] = Field(default=[])  # SSRF: or only these networks
    worker_lease_seconds: float = Field(default=60.0, gt=0)
    worker_batch: int = Field(default=100, ge=1, le=1000)
    worker_concurrency: int = Field(default=64, ge=1, le=1000)  # deliveries in flight per worker
    worker_poll_seconds: float = Field(default=1.0, gt=0)  # idle wake-up, for rows other processes wrote
    # serve: while this many webhooks wait for their commit, the in-process worker yields to ingest and
    # claims at most every worker_yield_seconds (0: it never yields)
    worker_yield_waiting: int = Field(default=32, ge=1)
    worker_yield_seconds: float = Field(default=0.5, ge=0)
    # --- CRM connections ---
    credentials_key: str | None = None  # Fernet key for CRM credentials at rest (else derived, see vault.py)
    crm_timeout_seconds: float = Field(default=20.0, gt=0, le=120)
    crm_concurrency: int = Field(default=4, ge=1, le=100)  # syncs in flight per connection, all workers
    crm_contact_cache_seconds: float = Field(default=300.0, ge=0)
    # --- vendor read APIs (docs/pull.md) ---
    # each source with pull settings is reconciled this often (0: never), over calls started this recently
    reconcile_seconds: float = Field(default=900.0, ge=0)
    reconcile_window_seconds: float = Field(default=6 * 3600, gt=0, le=30 * 86_400)
    hydrate_poll_seconds: float = Field(default=5.0, ge=0)  # due pulls of finished calls; 0: never
    # the gateway's recording links in relayed calls (gateway.pull.recordings): their lifetime
    recording_link_seconds: int = Field(default=30 * 86_400, ge=60, le=90 * 86_400)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"  # auto: console on a terminal, else JSON

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
