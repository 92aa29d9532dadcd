"""Each CRM kind as the end-to-end tests drive it: its double, credentials, how to inject trouble, and
how to read what landed in it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp

from tests.doubles import hubspot as hubspot_double
from tests.doubles import pipedrive as pipedrive_double
from tests.doubles import salesforce as salesforce_double

CUSTOMER = "(415) 555-0123"  # the graph8 fixtures' customer, written as a person would


@dataclass(frozen=True)
class Kind:
    name: str
    new_state: Callable[[], Any]
    app: Callable[[Any], ASGIApp]
    credentials: Mapping[str, str]
    records: Callable[[Any], list[dict[str, Any]]]  # the call records in the CRM
    record_id: Callable[[dict[str, Any]], str]
    rate_limit_next: Callable[[Any], None]
    rate_limit_status: int  # how this CRM says "rate limited" (Salesforce: 403)
    fail_next: Callable[[Any], None]
    refuse_credentials: Callable[[Any], None]
    check_latest: Callable[[Any, Mapping[str, Any]], None]  # asserts the CRM holds the call's latest state
    create_path: str  # the request that creates the call's record (a prefix of its path)
    create_method: str = "POST"


# --- Pipedrive: a call log (cannot be updated) plus one note ------------------------------------------

PIPEDRIVE_TOKEN = "pd-e2e-token-000000000000000000000000"


def _pipedrive_state() -> pipedrive_double.State:
    state = pipedrive_double.State(tokens={PIPEDRIVE_TOKEN})
    state.add_person("Ada Example", [CUSTOMER])
    return state


def _pipedrive_latest(state: pipedrive_double.State, call: Mapping[str, Any]) -> None:
    (log,) = state.call_logs.values()
    assert call["id"] in log["subject"]
    (person,) = state.persons.values()
    assert int(log["person_id"]) == person["id"]
    notes = [n for n in state.notes.values() if call["id"] in n["content"]]
    assert len(notes) == 1, notes  # one note, updated in place
    content = notes[0]["content"]
    assert call["transcript"][0]["text"][:20] in content  # the transcript arrived after the log
    assert str(round(call["grade"]["score"] * 100)) in content  # and the grade after that
    assert state.count("PUT", "/v1/callLogs") == 0
    assert state.count("PATCH", "/v1/callLogs") == 0


PIPEDRIVE = Kind(
    name="pipedrive",
    new_state=_pipedrive_state,
    app=pipedrive_double.app,
    credentials={"api_token": PIPEDRIVE_TOKEN},
    records=lambda state: list(state.call_logs.values()),
    record_id=lambda record: str(record["id"]),
    rate_limit_next=lambda state: state.inject(
        429, pipedrive_double.OVER_LIMIT, {"retry-after": "2"}, path_contains="/"
    ),
    rate_limit_status=429,
    fail_next=lambda state: state.inject(503, {"success": False, "error": "down"}, path_contains="/"),
    refuse_credentials=lambda state: state.tokens.clear() if state.tokens is not None else None,
    check_latest=_pipedrive_latest,
    create_path="/v1/callLogs",
)

# --- HubSpot: one call engagement, updated in place, associated with the matched contact ------------

HUBSPOT_TOKEN = "pat-e2e-0000-0000-0000-000000000000"


def _hubspot_state() -> hubspot_double.State:
    state = hubspot_double.State(valid_tokens={HUBSPOT_TOKEN})
    state.add_contact(phone=CUSTOMER, firstname="Ada", lastname="Example")
    return state


def _hubspot_latest(state: hubspot_double.State, call: Mapping[str, Any]) -> None:
    (record,) = state.calls.values()
    props = record["properties"]
    assert props["callgate_call_id"] == call["id"]
    assert props["hs_call_status"] == "COMPLETED"
    assert props["hs_call_duration"] == str(call["duration_seconds"] * 1000)  # milliseconds
    assert call["transcript"][0]["text"][:20] in props["hs_call_body"]
    (contact,) = state.contacts.values()
    assert state.contacts_of(record["id"]) == [contact["id"]]


HUBSPOT = Kind(
    name="hubspot",
    new_state=_hubspot_state,
    app=hubspot_double.app,
    credentials={"access_token": HUBSPOT_TOKEN},
    records=lambda state: list(state.calls.values()),
    record_id=lambda record: str(record["id"]),
    rate_limit_next=lambda state: state.inject(429, hubspot_double.rate_limit_body(), path_contains="/crm/"),
    rate_limit_status=429,
    fail_next=lambda state: state.inject(503, {"status": "error", "message": "down"}, path_contains="/crm/"),
    refuse_credentials=lambda state: state.valid_tokens.clear() if state.valid_tokens is not None else None,
    check_latest=_hubspot_latest,
    create_path="/crm/v3/objects/calls",
)

# --- Salesforce: one Task upserted by its external id ------------------------------------------------

SALESFORCE_TOKEN = "00De2e!token"


def _salesforce_state() -> salesforce_double.State:
    state = salesforce_double.State(valid_tokens={SALESFORCE_TOKEN})
    state.add_contact(phone=CUSTOMER)
    return state


def _salesforce_latest(state: salesforce_double.State, call: Mapping[str, Any]) -> None:
    (task,) = state.tasks.values()
    assert task["Callgate_Call_Id__c"] == call["id"]
    assert task["CallDurationInSeconds"] == call["duration_seconds"]
    assert call["transcript"][0]["text"][:20] in task["Description"]
    (contact,) = state.contacts.values()
    assert task["WhoId"] == contact["Id"]


SALESFORCE = Kind(
    name="salesforce",
    new_state=_salesforce_state,
    app=salesforce_double.app,
    credentials={"access_token": SALESFORCE_TOKEN},
    records=lambda state: list(state.tasks.values()),
    record_id=lambda record: str(record["Id"]),
    rate_limit_next=lambda state: state.inject(
        403, salesforce_double.OVER_LIMIT, path_contains="/services/data/"
    ),
    rate_limit_status=403,
    fail_next=lambda state: state.inject(
        503, [{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}], path_contains="/services/data/"
    ),
    refuse_credentials=lambda state: state.expire_tokens(),
    check_latest=_salesforce_latest,
    create_path="/services/data/v62.0/sobjects/Task/",
    create_method="PATCH",
)

KINDS: dict[str, Kind] = {kind.name: kind for kind in (HUBSPOT, PIPEDRIVE, SALESFORCE)}
