"""``wrk`` (closed loop, one thread, N connections) replaying a list of pre-built raw requests, with every
answer's status counted (per thread, collected in ``done``)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = """
local path = "%(requests)s"
local requests = nil
local index = 0
counts = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  requests = dofile(path)
end

function request()
  index = index + 1
  return requests[((index - 1) %% #requests) + 1]
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, reqs)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%.6f %%.3f %%.3f %%d %%d %%d %%d\\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect, e.read, e.write, e.timeout))
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      io.write(string.format("STATUS %%d %%d\\n", status, n))
    end
  end
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)


def _lua_string(raw: bytes) -> str:
    """A quoted Lua string (long brackets would turn CRLF into LF and break the HTTP framing)."""
    text = raw.decode("latin-1")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")
    return '"' + escaped + '"'


def run(
    url: str, requests: list[bytes], *, seconds: float, connections: int = 64, cyclic: bool = False
) -> WrkResult:
    """``wrk -t1 -c{connections} -d{seconds}s`` sending ``requests`` in order. Unless ``cyclic`` (a server
    for which a replay costs the same as a new request), more answers than requests is an error: a
    replayed webhook is a duplicate, cheaper than a new one, and would flatter the figure."""
    if shutil.which("wrk") is None:
        raise SystemExit("the HTTP benchmarks need wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory(prefix="callgate-wrk-") as tmp:
        listing = Path(tmp) / "requests.lua"
        with listing.open("w", encoding="latin-1") as out:
            out.write("local r = {}\n")
            for raw in requests:
                out.write(f"r[#r+1] = {_lua_string(raw)}\n")
            out.write("return r\n")
        script = Path(tmp) / "replay.lua"
        script.write_text(SCRIPT % {"requests": listing})
        completed = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s", "-s", str(script), url],
            capture_output=True, text=True, timeout=seconds + 180,
        )  # fmt: skip
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed: {completed.stderr.strip() or completed.stdout.strip()}")
    result: WrkResult | None = None
    statuses: dict[int, int] = {}
    for line in completed.stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["RESULT"]:
            n, duration, p50, p99, *errors = parts[1:]
            result = WrkResult(int(n), float(duration), float(p50), float(p99), sum(int(e) for e in errors))
        elif parts[:1] == ["STATUS"]:
            statuses[int(parts[1])] = statuses.get(int(parts[1]), 0) + int(parts[2])
    if result is None:
        raise RuntimeError(f"wrk printed no result: {completed.stdout[-500:]} {completed.stderr[-500:]}")
    result.statuses = statuses
    if not cyclic and result.requests > len(requests):
        raise RuntimeError(
            f"wrk sent {result.requests} requests but only {len(requests)} were prepared: the rest were "
            "replays (duplicates); prepare more"
        )
    return result
