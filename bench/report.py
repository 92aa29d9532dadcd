"""The suite's printed report: the "Speed" table (measure, callgate, reference, ratio, target, met), the
table of "the in-process worker starves ingest" under it, and the checks of every HTTP ingest run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.growth import LIST_QUERY

Row = tuple[str, str, str, str, str, str]


def _n(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _at_least(measure: str, value: float, reference: float, share: float) -> Row:
    """A throughput that must be at least ``share`` of its reference."""
    target = f"≥ {share:.0%}" if share <= 1 else f"≥ {share:g}x"
    ratio = f"{value / reference:.1%}" if share <= 1 else f"{value / reference:.1f}x"
    return (measure, _n(value), _n(reference), ratio, target, _met(value >= share * reference))


def _at_most(measure: str, value: float, limit: float) -> Row:
    """A latency with an absolute ceiling."""
    return (measure, f"{value:,.1f}", "—", "—", f"≤ {limit:g} ms", _met(value <= limit))


def _slower_by_at_most(measure: str, value: float, reference: float, factor: float) -> Row:
    ratio = f"{value / reference:.2f}x"
    return (
        measure,
        f"{value:,.1f}",
        f"{reference:,.1f}",
        ratio,
        f"≤ {factor:.2f}x",
        _met(value <= factor * reference),
    )


def speed_rows(parts: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    sqlite_peak: float | None = None
    if ingest := parts.get("ingest"):
        sqlite_peak = peak = float(ingest["callgate"]["per_second"])
        bare = ingest["bare_starlette"]["per_second"]
        rows.append(_at_least("ingest peak, SQLite FULL, webhooks/s (ref: bare Starlette)", peak, bare, 0.35))
        naive = ingest["naive"]["per_second"]
        rows.append(_at_least("ingest peak, webhooks/s (ref: naive SQLModel + aiosqlite)", peak, naive, 15))
        fixed = ingest["fixed_rate"]
        rate, p50 = fixed["rate"], fixed["p50_ms"]
        measure = f"ingest ack p99 ms at a fixed {rate:.0f}/s = 50% of the peak (p50 {p50:.1f})"
        rows.append(_at_most(measure, fixed["p99_ms"], 50))
    if pg := parts.get("postgres"):
        measure = "ingest peak, PostgreSQL, webhooks/s (ref: SQLite, same run)"
        if "skipped" in pg:
            rows.append((measure, "skipped", "—", "—", "≥ 75%", "—"))
        elif sqlite_peak is None:
            rows.append((measure, _n(pg["callgate"]["per_second"]), "not run", "—", "≥ 75%", "—"))
        else:
            rows.append(_at_least(measure, pg["callgate"]["per_second"], sqlite_peak, 0.75))
    if outbox := parts.get("outbox"):
        drain = outbox["drain"]
        measure = f"delivery drain of {drain['backlog']:,}, deliveries/s, callgate worker (ref: raw httpx)"
        rows.append(_at_least(measure, drain["worker"], drain["raw_httpx"], 0.6))
        e2e = _fixed(outbox, 200, True)
        rows.append(_at_most("end to end at 200/s, webhook → signed delivery, p50 ms", e2e["e2e_p50"], 20))
        rows.append(_at_most("end to end at 200/s, webhook → signed delivery, p99 ms", e2e["e2e_p99"], 100))
    if growth := parts.get("growth"):
        small, large = (v for v in growth.values() if isinstance(v, dict))
        sizes = f"{large['calls']:,} calls (ref: {small['calls']:,})"
        peak_large, peak_small = large["ingest"]["per_second"], small["ingest"]["per_second"]
        rows.append(_at_least(f"growth: ingest peak, webhooks/s, {sizes}", peak_large, peak_small, 0.8))
        for p in ("p50", "p99"):
            measure = f"growth: `GET {LIST_QUERY}` {p} ms, {sizes}"
            rows.append(_slower_by_at_most(measure, large["list"][f"{p}_ms"], small["list"][f"{p}_ms"], 1.2))
    return rows


def _fixed(outbox: dict[str, Any], rate: int, worker: bool) -> dict[str, Any]:
    found: dict[str, Any] = next(
        r for r in outbox["fixed_rate"] if r["rate"] == rate and r["worker"] is worker
    )
    return found


def outbox_rows(outbox: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for rate in (100, 200):
        off, on = _fixed(outbox, rate, False), _fixed(outbox, rate, True)
        ack_target, ack_met = ("p99 ≤ 50", _met(on["ack_p99"] <= 50)) if rate == 200 else ("", "")
        e2e_ok = on["e2e_p50"] <= 20 and on["e2e_p99"] <= 100
        e2e_target, e2e_met = ("≤ 20 / ≤ 100", _met(e2e_ok)) if rate == 200 else ("", "")
        ack = f"{off['ack_p50']:.0f} / {off['ack_p99']:.0f}", f"{on['ack_p50']:.0f} / {on['ack_p99']:.0f}"
        rows.append((f"{rate}/s: ack p50 / p99 ms", *ack, "", ack_target, ack_met))
        e2e = f"{on['e2e_p50']:.0f} / {on['e2e_p99']:.0f}"
        rows.append((f"{rate}/s: webhook → subscriber p50 / p99 ms", "—", e2e, "", e2e_target, e2e_met))
        counts = str(off["non_2xx"]), f"{on['non_2xx']}; {on['delivered']:,} of {on['webhooks']:,}"
        rows.append((f"{rate}/s: non-2xx answers; deliveries received", *counts, "", "", ""))
    peak = outbox["peak"]
    none, one = peak["none"], peak["one_subscription"]
    share = f"{one / none:.1%}"
    rows.append(("peak ingest, webhooks/s: none / one subscription", _n(none), _n(one), share, "≥ 70%",
                 _met(one >= 0.7 * none)))  # fmt: skip
    drain = outbox["drain"]
    raw, worker = drain["raw_httpx"], drain["worker"]
    measure, share = (
        f"drain {drain['backlog']:,}, deliveries/s: raw httpx / callgate worker",
        f"{worker / raw:.1%}",
    )
    rows.append((measure, _n(raw), _n(worker), share, "≥ 60%", _met(worker >= 0.6 * raw)))
    return rows


def check_lines(parts: dict[str, Any]) -> list[str]:
    """Every HTTP ingest run: its answers and what it stored (nothing acknowledged may be missing)."""
    runs: list[tuple[str, dict[str, Any]]] = []
    if ingest := parts.get("ingest"):
        runs += [
            (f"ingest, {key}", ingest[key]) for key in ("bare_starlette", "naive", "callgate", "fixed_rate")
        ]
    if (pg := parts.get("postgres")) and "callgate" in pg:
        runs.append(("postgres, callgate", pg["callgate"]))
    if growth := parts.get("growth"):
        runs += [
            (f"growth, {v['calls']:,} calls", v["ingest"]) for v in growth.values() if isinstance(v, dict)
        ]
    lines = []
    for name, run in runs:
        ok = run["requests"] - run["non_2xx"]
        text = f"- {name}: {run['requests']:,} answered, {run['non_2xx']} non-2xx"
        if "statuses" in run:
            text += " (" + ", ".join(f"{k}: {v:,}" for k, v in run["statuses"].items()) + ")"
        if run.get("socket_errors"):
            text += f", {run['socket_errors']} socket errors"
        if run.get("cyclic"):
            text += f", {run['prepared']:,} requests prepared and replayed in turn"
        elif "prepared" in run:
            text += f", of {run['prepared']:,} requests prepared"
        if "stored" in run:
            text += f"; {run['stored']:,} raw events stored"
            if run["stored"] < ok:
                text += " — **fewer than acknowledged**"
        lines.append(text)
    if (outbox := parts.get("outbox")) and "runs" in outbox["peak"]:
        runs_of = outbox["peak"]["runs"]
        lines.append(
            "- outbox peaks, webhooks/s in the order run (the table takes the medians): no subscription "
            + " / ".join(f"{r:,}" for r in runs_of["none"])
            + "; one subscription "
            + " / ".join(f"{r:,}" for r in runs_of["one_subscription"])
        )
    return lines


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def render(result: dict[str, Any], output: str) -> str:
    parts = {name: part for name, part in result["parts"].items() if "error" not in part}
    failed = [
        f"- {name} **failed**: {part['error']}" for name, part in result["parts"].items() if "error" in part
    ]
    quick = " — **--quick sizes: not figures of record**" if result["quick"] else ""
    lines = [
        f"callgate benchmarks, {result['started']}, {result['machine']}{quick}",
        "",
        "Ingest rows: one `serve`, CALLGATE_WORKER=false (outbox rows written, no deliveries), "
        "CALLGATE_LOG_LEVEL=warning, one subscription to call.*, the six-vendor mix, wrk -t1 -c64.",
        "",
        *table(("measure", "callgate", "reference", "ratio", "target", "met"), speed_rows(parts)),
    ]
    if (pg := parts.get("postgres")) and "skipped" in pg:
        lines += ["", f"PostgreSQL: {pg['skipped']}"]
    if outbox := parts.get("outbox"):
        lines += [
            "",
            "The in-process worker starves ingest (bench.outbox.Bench: graph8 call.completed, a new call "
            "each; serve at its default log level; worker: its delivery worker on, one subscription to "
            "bench/receiver.py):",
            "",
        ]
        header = ("measure", "serve, no worker", "serve, worker + 1 subscription", "ratio", "target", "met")
        lines += table(header, outbox_rows(outbox))
    if growth := parts.get("growth"):
        sizes = [
            f"{v['calls']:,} calls seeded in {v['seed_seconds']} s ({v['database_bytes'] / 1e6:,.0f} MB), "
            f"{v['list']['requests']} list requests of {v['list']['rows']} rows"
            for v in growth.values()
            if isinstance(v, dict)
        ]
        lines += ["", "Growth: " + "; ".join(sizes) + "."]
    if checks := check_lines(parts):
        lines += [
            "",
            "Checks (before each callgate or naive run, a fresh call of each vendor was stored: 202):",
        ]
        lines += checks
    if failed:
        lines += ["", "Parts that failed (their rows are missing):", *failed]
    lines += ["", f"took {result['seconds']:.0f} s; everything in {output}"]
    return "\n".join(lines)
