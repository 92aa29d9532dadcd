"""CRM connectors: one file per CRM (``hubspot.py``, ``salesforce.py``, ``pipedrive.py``) and one line each in
``adapters/registry.py`` (``OUTBOUND``). They mirror the inbound side.

The protocol (types in ``gateway.connectors``; a connector imports only the core, ``httpx`` and
``phonenumbers``):

- **Pure mapping**: the public call document (``gateway.render.call``) -> the CRM's request body, per the
  field table in ``docs/crm.md`` (units matter: HubSpot durations are milliseconds).
- **Pure classification**: ``classify(status_code, headers, body) -> CrmOutcome``, one of ``DONE``,
  ``RETRY`` (transient, retry_after), ``PAUSED`` (rate limited: the whole connection waits pause_seconds),
  ``AUTH_FAILED`` (stop the connection until its credentials are patched) or ``PERMANENT`` (this version
  is refused: dead, visible in the delivery log, never blocks the next call). It never raises.
- **One small connector** per CRM account, built by ``SPEC.build(base_url, credentials, options, client,
  contacts)`` over the worker's shared ``httpx.AsyncClient``: ``test()`` makes one harmless authenticated
  read; ``sync(call, existing)`` brings the CRM record of the call to the call's latest state and returns
  the ``SyncedRecord`` (the mapping table keeps it). With ``existing=None`` it first looks for a record a
  crashed earlier attempt may have created (HubSpot: search by the call-id property; Salesforce: the
  external-id upsert; Pipedrive: the subject marker), so a call is one record, never two. Contacts are
  matched by the customer's E.164 number through the per-connection ``ContactCache``, re-checked with
  ``phonenumbers``. Every failure is a ``CrmFailure`` carrying its ``CrmOutcome``; no credential appears
  in any message.
"""
