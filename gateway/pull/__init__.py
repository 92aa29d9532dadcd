"""Pulling from the vendors' read APIs: what webhooks left out, what they dropped, links that still play.

One module per vendor (``graph8``, ``voiceapi``, ``callsv1``, ``voicecalls``, ``livekit``) over two shared
ones: ``base`` (credentials, windows, pages, outcomes, and the pure helpers that build webhook-shaped
bodies with deterministic dedupe keys) and ``http`` (the one request helper: status codes to outcomes).

Every vendor module has two halves that never mix:

* **Reading** (I/O): typed ``async`` functions over an ``httpx.AsyncClient`` the caller injects (the
  product's, whose transport checks SSRF) and the source's credentials. They never sleep: a 429, a 5xx, a
  network failure or a result still being computed raises ``VendorRetryLater`` (seconds to wait, or the
  vendor's documented back-off), so the outbox schedules the retry. A 404 or an empty part returns
  ``Missing`` (nothing to pull: stop). Refused credentials raise ``VendorAuthFailed``.
* **Mapping** (pure): the fetched vendor objects become ``PulledEvent``s, bodies in exactly the webhook
  shape of ``design/vendors.md`` for that vendor, so the product pushes them through the vendor's
  *existing* inbound adapter unchanged, and the state machine merges them like any other event.

The dedupe key of a pulled event is a digest of what the body says (never of when it was fetched): a
re-fetch of unchanged content is a duplicate, changed content is a new event.

The qualifier (seed 003) has no client: its seed names no read endpoint, response shape or cursor
parameter, so one would be guesswork against a real vendor.
"""
