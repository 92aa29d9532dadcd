"""E.164 normalization of the numbers in call updates, with ``phonenumbers``. Pure."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import phonenumbers

from gateway.model import CallUpdate

NUMBER_FIELDS = ("from_number", "to_number")


@lru_cache(maxsize=65_536)
def to_e164(raw: str, region: str) -> str | None:
    """The E.164 form of a number, or None when it is not a possible phone number."""
    candidate = raw.strip()
    if candidate.lower().startswith(("tel:", "sip:")):
        candidate = candidate[4:].split("@", 1)[0]
    try:
        parsed = phonenumbers.parse(candidate, None if candidate.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalize(update: CallUpdate, region: str) -> CallUpdate:
    """Numbers become E.164; one that does not parse is dropped and kept raw in ``vendor_extra``."""
    present = [name for name in NUMBER_FIELDS if name in update.fields]
    if not present:
        return update
    fields = dict(update.fields)
    extra = dict(fields.get("vendor_extra") or {})
    for name in present:
        raw = str(fields[name])
        e164 = to_e164(raw, region)
        if e164 is None:
            del fields[name]
            extra[f"{name}_raw"] = raw
        else:
            fields[name] = e164
    if extra:
        fields["vendor_extra"] = extra
    return replace(update, fields=fields)
