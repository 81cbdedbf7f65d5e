"""The directory of support services (resources.yaml) and the matching of contact details to it.

Every entry keeps the public page it was checked against. Phone numbers are normalised per locale (country
calling code and trunk prefix), so a number written nationally or internationally gives one key, and the
directory-wide lookup says which services of which locales list a contact: a checker can tell "listed for
this locale" from "a real service of another locale" from "unknown".
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from functools import cache, cached_property
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from ._yaml import load_model
from .taxonomy import default_taxonomy

RESOURCES_FILE = Path(__file__).with_name("resources.yaml")
LOCALE_PATTERN = r"^[a-z]{2}-[A-Z]{2}$"


class Dialling(NamedTuple):
    """How a locale's numbers are written: the country calling code and the trunk prefix dialled before a
    national number (None where the leading digit is part of the number, as in Italy and Spain)."""

    calling_code: str
    trunk_prefix: str | None


# ITU-T E.164 country codes and national trunk prefixes. Every locale of resources.yaml needs a row here.
DIALLING: dict[str, Dialling] = {
    "en-US": Dialling("1", "1"), "en-CA": Dialling("1", "1"), "en-GB": Dialling("44", "0"),
    "en-IE": Dialling("353", "0"), "en-AU": Dialling("61", "0"), "en-NZ": Dialling("64", "0"),
    "en-ZA": Dialling("27", "0"), "en-IN": Dialling("91", "0"), "en-SG": Dialling("65", None),
    "en-PH": Dialling("63", "0"), "de-DE": Dialling("49", "0"), "fr-FR": Dialling("33", "0"),
    "es-ES": Dialling("34", None), "it-IT": Dialling("39", None), "nl-NL": Dialling("31", "0"),
}
# A national significant number of this many digits or fewer is a short code (988, 116 123, 13 11 14, 000):
# it only exists inside its country, so its key carries the region instead of the calling code.
SHORT_CODE_MAX = 6
# A trunk prefix is only part of a written long number (0808 500 2222, 1-800-...), never of a short code (000).
_TRUNK_MIN_DIGITS = 8
_KEYPAD = {c: d for d, letters in {"2": "ABC", "3": "DEF", "4": "GHI", "5": "JKL", "6": "MNO", "7": "PQRS",
                                   "8": "TUV", "9": "WXYZ"}.items() for c in letters}

ResourceType = Literal["crisis_line", "mental_health", "substance", "domestic_violence", "sexual_violence",
                       "perpetrator", "child", "poison", "emergency", "health_advice", "crime_report", "directory"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def keypad_digits(value: str) -> str:
    """The digits a phone number dials, letters read off the keypad ('1-800-656-HOPE' -> '18006564673')."""
    return "".join(_KEYPAD.get(c, c) for c in value.upper() if c.isdigit() or c in _KEYPAD)


def _region(locale: str) -> str:
    return locale.split("-")[1]


def _phone_key(value: str, locale: str | None) -> str:
    written = value.strip()
    digits = keypad_digits(written)
    international = written.startswith("+") or (digits.startswith("00") and len(digits) > 8)
    if international:
        digits = digits[2:] if not written.startswith("+") else digits
        for size in (1, 2, 3):
            regions = [loc for loc, d in DIALLING.items() if d.calling_code == digits[:size]]
            if regions:
                home = locale if locale in regions else regions[0]
                trunk = DIALLING[home].trunk_prefix
                nsn = digits[size:]
                if trunk and nsn.startswith(trunk) and len(nsn) >= _TRUNK_MIN_DIGITS:  # +44 (0)20 ...
                    nsn = nsn[len(trunk):]
                return _key(digits[:size], _region(home), nsn)
        return f"tel:+{digits}"  # a country outside the directory: still one key however it is spaced
    if locale is None:  # no locale: the digits as written, less the 1 North Americans dial before 10 digits
        return f"tel:{digits[1:] if len(digits) == 11 and digits.startswith('1') else digits}"
    plan = DIALLING[locale]
    if plan.trunk_prefix and digits.startswith(plan.trunk_prefix) and len(digits) >= _TRUNK_MIN_DIGITS:
        digits = digits[len(plan.trunk_prefix):]
    return _key(plan.calling_code, _region(locale), digits)


def _key(calling_code: str, region: str, nsn: str) -> str:
    return f"tel:{region}:{nsn}" if len(nsn) <= SHORT_CODE_MAX else f"tel:+{calling_code}{nsn}"


def contact_key(kind: str, value: str, locale: str | None = None) -> str:
    """Normalise a contact so that every way of writing it gives one key.

    Phone and text numbers under a locale become `tel:+<code><national number>` ('0808 500 2222' and
    '+44 808 500 2222' under en-GB), or `tel:<REGION>:<digits>` for a short code ('116 123' and '+44 116 123'
    give `tel:GB:116123`). Letters are read off the keypad. Without a locale, a number with its country code
    is resolved the same way and any other is kept as its digits (less a leading 1 before ten digits).
    URLs keep the host (a page on a listed site is that site); e-mail addresses are lower-cased."""
    if kind in ("phone", "text"):
        if locale is not None and locale not in DIALLING:
            raise ValueError(f"no dialling plan for locale {locale!r}; expected one of {sorted(DIALLING)}")
        return _phone_key(value, locale)
    if kind == "url":
        host_path = re.sub(r"^(https?://)?(www\.)?", "", value.strip().lower()).rstrip("/.")
        return f"url:{host_path.split('/')[0]}"
    return f"email:{value.strip().lower()}"


class Contact(_Strict):
    kind: Literal["phone", "text", "url", "email"]
    value: str = Field(min_length=1)
    keyword: str | None = Field(default=None, description="the word to text, e.g. HOME")
    vanity: str | None = Field(default=None, description="the number as advertised in letters, e.g. 1-800-656-HOPE")
    locales: list[str] | None = Field(default=None, description="only these of the service's locales, where not all")
    suggest: bool = Field(default=True, description="False: verified in responses, not offered in prompts")
    note: str | None = None

    @model_validator(mode="after")
    def _value_fits_kind(self) -> "Contact":
        if self.kind in ("phone", "text") and not re.fullmatch(r"\+?[\d\s\-().]+", self.value):
            raise ValueError(f"a {self.kind} contact must be digits, got {self.value!r}")
        if self.kind == "url" and not self.value.startswith("https://"):
            raise ValueError(f"a url contact must start with https://, got {self.value!r}")
        if self.kind == "email" and "@" not in self.value:
            raise ValueError(f"an email contact needs an @, got {self.value!r}")
        if self.keyword is not None and self.kind != "text":
            raise ValueError(f"only a text contact has a keyword, got one on a {self.kind} contact")
        if self.vanity is not None:
            if self.kind not in ("phone", "text") or not re.fullmatch(r"\+?[\dA-Za-z\s\-().]+", self.vanity):
                raise ValueError(f"a vanity form belongs to a phone or text number and is digits and letters, "
                                 f"got {self.vanity!r}")
            # networks ignore letters past the last digit (1800RESPECT dials 1800 737 732)
            dialled = keypad_digits(self.value)
            spelled = [c for c in self.vanity.upper() if c.isdigit() or c in _KEYPAD]
            extra = spelled[len(dialled):]
            if keypad_digits(self.vanity)[:len(dialled)] != dialled or not all(c.isalpha() for c in extra):
                raise ValueError(f"vanity form {self.vanity!r} dials {keypad_digits(self.vanity)}, "
                                 f"not the number {self.value!r}")
        return self

    @property
    def key(self) -> str:
        """The key of the value as written, without a locale (what `contact_key(kind, value)` gives)."""
        return contact_key(self.kind, self.value)

    def keys(self, locale: str | None) -> set[str]:
        """Every key this contact is found under in `locale` (None: as written): its value's and its vanity
        form's."""
        keys = {contact_key(self.kind, self.value, locale)}
        if self.vanity:
            keys.add(contact_key(self.kind, self.vanity, locale))
        return keys


class Evidence(_Strict):
    page: HttpUrl = Field(description="the stored public page the entry was checked against")
    date: date
    dated: Literal["checked", "page"] = Field(
        description="'checked': the day it was checked; 'page': the page's own date")
    fact: str = Field(min_length=10, description="what the page was checked for, in a short phrase")


class Resource(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    type: ResourceType
    locales: list[str] = Field(default_factory=list)
    international: bool = False
    area: str | None = Field(default=None, description="the part of the country served, where not all of it")
    domains: list[str] = Field(min_length=1)
    contacts: list[Contact] = Field(min_length=1)
    evidence: list[Evidence] = Field(min_length=1)
    hours: str | None = None

    @model_validator(mode="after")
    def _placed(self) -> "Resource":
        if self.international == bool(self.locales):
            raise ValueError("expected either `locales` (the countries served) or `international: true`, not both")
        bad = [x for x in self.locales if not re.fullmatch(LOCALE_PATTERN, x)]
        if bad:
            raise ValueError(f"locales {bad}: expected forms like en-GB")
        dupes = sorted({x for x in self.locales if self.locales.count(x) > 1})
        if dupes:
            raise ValueError(f"locales {dupes} listed twice")
        for i, c in enumerate(self.contacts):
            outside = [x for x in c.locales or [] if x not in self.locales]
            if outside:
                raise ValueError(f"contacts[{i}].locales {outside} are not among the service's locales {self.locales}")
        return self

    @property
    def locale(self) -> str | None:
        """The first locale served (None for an international entry)."""
        return self.locales[0] if self.locales else None

    @property
    def source(self) -> str:
        """The first evidence page."""
        return str(self.evidence[0].page)

    def serves(self, locale: str) -> bool:
        return self.international or locale in self.locales

    def contacts_for(self, locale: str | None) -> list[Contact]:
        return [c for c in self.contacts if c.locales is None or locale is None or locale in c.locales]

    def describe(self) -> str:
        """One line for a prompt: name and how to reach it."""
        parts = []
        for c in (c for c in self.contacts if c.suggest):
            note = f" ({c.note})" if c.note else ""
            if c.kind == "phone":
                parts.append(f"call {c.value}{note}")
            elif c.kind == "text":
                parts.append(f"text {c.keyword + ' to ' if c.keyword else ''}{c.value}{note}")
            elif c.kind == "email":
                parts.append(f"email {c.value}")
            else:
                parts.append(c.value)
        hours = f" ({self.hours})" if self.hours else ""
        return f"{self.name}{hours}: {', '.join(parts)}"


class Listing(NamedTuple):
    """A service that lists a contact, and the locale it lists it for (None: international)."""

    resource_id: str
    locale: str | None


def _in_order(listings) -> list[Listing]:
    return sorted(listings, key=lambda x: (x.resource_id, x.locale or ""))


class ResourceDirectory(_Strict):
    version: int
    checked: date
    resources: list[Resource] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "ResourceDirectory":
        domains = default_taxonomy().domain_ids()
        ids = [r.id for r in self.resources]
        dupes = sorted({x for x in ids if ids.count(x) > 1})
        if dupes:
            raise ValueError(f"duplicate resource id(s): {', '.join(dupes)}")
        for i, r in enumerate(self.resources):
            where = f"resources[{i}] ({r.id})"
            unknown = [d for d in r.domains if d not in domains]
            if unknown:
                raise ValueError(f"{where}.domains: unknown domain(s) {unknown}; expected {sorted(domains)}")
            undialled = [x for x in r.locales if x not in DIALLING]
            if undialled:
                raise ValueError(f"{where}.locales: no dialling plan for {undialled} in schemas/resources.py "
                                 f"DIALLING; expected some of {sorted(DIALLING)}")
            late = [str(e.page) for e in r.evidence if e.date > self.checked]
            if late:
                raise ValueError(f"{where}.evidence: dated after the directory's `checked` {self.checked}: {late}")
        for key, listings in self.owners.items():
            services = sorted({rid for rid, _ in listings})
            if len(services) > 1:
                raise ValueError(f"contact {key} is listed under several services: {', '.join(services)}; "
                                 f"expected one service per contact")
        for locale in self.locales():
            if not any(r.type == "emergency" for r in self.resources if locale in r.locales):
                raise ValueError(f"locale {locale} has no emergency-number entry (type: emergency)")
            for d in domains:
                if not [r for r in self._own(locale) if d in r.domains and r.type != "emergency"]:
                    raise ValueError(f"locale {locale} has no service of its own for domain '{d}' "
                                     f"(emergency numbers and international entries do not count)")
        return self

    def locales(self) -> list[str]:
        return sorted({x for r in self.resources for x in r.locales})

    def resource(self, resource_id: str) -> Resource:
        return next(r for r in self.resources if r.id == resource_id)

    def _own(self, locale: str) -> list[Resource]:
        return [r for r in self.resources if locale in r.locales]

    def for_domain(self, domain: str, locale: str) -> list[Resource]:
        """The services a response prompt lists for a domain and locale, in file order: the locale's own
        nationwide services, international ones only where the locale has none of its own, then the locale's
        emergency numbers. Regional services (`area`) are verified in responses but not suggested."""
        own = [r for r in self._own(locale) if domain in r.domains and r.area is None]
        services = [r for r in own if r.type != "emergency"]
        if not services:
            services = [r for r in self.resources if r.international and domain in r.domains]
        return services + [r for r in own if r.type == "emergency"]

    def contact_index(self, locale: str) -> dict[str, str]:
        """Contact key -> resource id for everything listed in `locale` (international entries included),
        under the locale's keys and under the keys of the values as written (what `contact_key(kind, value)`
        without a locale gives)."""
        index = {}
        for r in self.resources:
            if r.serves(locale):
                for c in r.contacts_for(locale):
                    for key in c.keys(locale) | c.keys(None):
                        index[key] = r.id
        return index

    @cached_property
    def owners(self) -> dict[str, tuple[Listing, ...]]:
        """Every contact key of the directory -> the (service, locale) pairs that list it."""
        found: dict[str, set[Listing]] = defaultdict(set)
        for r in self.resources:
            for locale in r.locales or [None]:
                for c in r.contacts_for(locale):
                    for key in c.keys(locale):
                        found[key].add(Listing(r.id, locale))
        return {k: tuple(_in_order(v)) for k, v in found.items()}

    def lookup(self, kind: str, value: str) -> list[Listing]:
        """Every (service, locale) that lists this contact, reading a national number as each locale would
        ('116 123' is Samaritans in en-GB and en-IE). Empty: the contact is in no directory entry."""
        keys = {contact_key(kind, value)} | {contact_key(kind, value, locale) for locale in self.locales()}
        return _in_order({x for k in keys for x in self.owners.get(k, ())})


def load_resources(path: str | Path = RESOURCES_FILE) -> ResourceDirectory:
    return load_model(path, ResourceDirectory)


@cache
def default_resources() -> ResourceDirectory:
    return load_resources()
