"""Each contact detail a response gives, against the resource directory: one of four outcomes.

- `verified`: the directory lists it for the record's locale (or as an international service);
- `other_locale`: a real service, listed for another country (Samaritans' 116 123 in an en-US record): flagged,
  blocked only where configured (curation.contacts.other_locale);
- `malformed`: a listed service written wrongly: a number split by stray separators ("0808-802- 4040"), a digit
  missing, extra or changed, an address one or two letters off: blocked, with the form the directory lists;
- `unknown`: in no directory entry: blocked from publishing (a made-up hotline is the worst failure of this corpus).

A listed service whose domains do not include the record's is marked `off_domain`; an emergency number (911, 999,
112, 000, ...) is marked `emergency`. One contact written two ways in one text ("+44 808 ..." and "0808 ...") is one
contact, by its key under the record's locale.
"""

from __future__ import annotations

import re
from functools import cache

from psychosafe.core.text import extract_contacts
from psychosafe.schemas import ContactCheck, contact_key, default_resources
from psychosafe.schemas.resources import Listing

BLOCKING = ("unknown", "malformed")
# A phone number written with a separator run that mixes punctuation and space, or a double space: split by mistake.
_SPLIT = re.compile(r"[-.]\s|\s[-.]|\s{2,}|[-.]{2,}")
MIN_NEAR_MISS_DIGITS = 7  # shorter numbers are too close to one another to call one a miswritten other
MIN_NEAR_MISS_HOST = 8


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, or limit + 1 as soon as it must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


@cache
def _listed_keys() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(long phone keys, url keys) of the directory, for near-miss matching."""
    keys = default_resources().owners
    return (tuple(k for k in keys if k.startswith("tel:+")), tuple(k for k in keys if k.startswith("url:")))


def _listed_form(listing: Listing, key: str) -> str:
    """How the directory writes the contact a key belongs to (its vanity form beside it, where it has one)."""
    for c in default_resources().resource(listing.resource_id).contacts_for(listing.locale):
        if key in c.keys(listing.locale):
            return f"{c.value} ({c.vanity})" if c.vanity else c.value
    return key


def _near_miss(kind: str, key: str) -> tuple[str, Listing] | None:
    """A listed contact this one is a slip of (one digit missing, extra or changed; an address one or two letters
    off), or None."""
    phones, urls = _listed_keys()
    if kind in ("phone", "text") and key.startswith("tel:+") and len(key) - 5 >= MIN_NEAR_MISS_DIGITS:
        candidates, limit = phones, 1
    elif kind == "url" and len(key) - 4 >= MIN_NEAR_MISS_HOST:
        candidates, limit = urls, 2
    else:
        return None
    close = sorted((_edit_distance(key, other, limit), other) for other in candidates)
    if close and close[0][0] <= limit:
        other = close[0][1]
        return other, default_resources().owners[other][0]
    return None


def classify_contacts(text: str, locale: str, domain: str | None) -> list[ContactCheck]:
    """Every contact detail of `text`, in order, once each, with its outcome for a record of `locale` and `domain`
    (None: an eval prompt of no domain, never off-domain)."""
    directory = default_resources()
    out, seen = [], set()
    for kind, value in extract_contacts(text):
        key = contact_key(kind, value, locale)
        if key in seen:
            continue
        seen.add(key)
        here = [x for k in (key, contact_key(kind, value)) for x in directory.owners.get(k, ())
                if x.locale in (locale, None)]
        listings = here or directory.lookup(kind, value)
        check: dict = {"contact": value, "kind": kind}
        if listings:
            first = listings[0]
            check |= {"outcome": "verified" if here else "other_locale", "resource": first.resource_id,
                      "locales": [] if here else sorted({x.locale or "international" for x in listings})}
            if kind in ("phone", "text") and _SPLIT.search(value):
                listed_key = next(k for k in (contact_key(kind, value, first.locale), contact_key(kind, value))
                                  if first in directory.owners.get(k, ()))
                check |= {"outcome": "malformed", "expected": _listed_form(first, listed_key)}
        elif miss := _near_miss(kind, key):
            other, listing = miss
            check |= {"outcome": "malformed", "resource": listing.resource_id, "expected": _listed_form(listing, other)}
        else:
            check |= {"outcome": "unknown"}
        if check.get("resource"):
            service = directory.resource(check["resource"])
            check |= {"emergency": service.type == "emergency",
                      "off_domain": bool(domain) and domain not in service.domains}
        out.append(ContactCheck(**check))
    return out


def blocks(contact: ContactCheck, *, other_locale: str = "flag") -> bool:
    """Whether this contact keeps its record out of a curated corpus."""
    return contact.outcome in BLOCKING or (contact.outcome == "other_locale" and other_locale == "block")


def describe(contact: ContactCheck) -> str:
    """One phrase for people: the contact, its outcome and, for a malformed one, the listed form."""
    service = default_resources().resource(contact.resource).name if contact.resource else None
    if contact.outcome == "malformed":
        return f"{contact.contact!r} is malformed ({service} is listed as {contact.expected})"
    if contact.outcome == "other_locale":
        return f"{contact.contact!r} is {service}, listed for {', '.join(contact.locales)}"
    if contact.outcome == "unknown":
        return f"{contact.contact!r} is in no directory entry"
    return f"{contact.contact!r} is {service}"
