"""The directory of verified support services (resources.yaml) and matching contact details to it."""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from ._yaml import load_model
from .taxonomy import default_taxonomy

RESOURCES_FILE = Path(__file__).with_name("resources.yaml")
LOCALE_PATTERN = r"^[a-z]{2}-[A-Z]{2}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Strict):
    kind: Literal["phone", "text", "url", "email"]
    value: str = Field(min_length=1)
    note: str | None = None

    @model_validator(mode="after")
    def _value_fits_kind(self) -> "Contact":
        if self.kind in ("phone", "text") and not re.fullmatch(r"\+?[\d\s\-().]+", self.value):
            raise ValueError(f"a {self.kind} contact must be digits, got {self.value!r}")
        if self.kind == "url" and not self.value.startswith("https://"):
            raise ValueError(f"a url contact must start with https://, got {self.value!r}")
        if self.kind == "email" and "@" not in self.value:
            raise ValueError(f"an email contact needs an @, got {self.value!r}")
        return self

    @property
    def key(self) -> str:
        return contact_key(self.kind, self.value)


class Resource(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    locale: str = Field(pattern=LOCALE_PATTERN)
    domains: list[str] = Field(min_length=1)
    contacts: list[Contact] = Field(min_length=1)
    source: HttpUrl
    hours: str | None = None

    def describe(self) -> str:
        """One line for a prompt: name and how to reach it."""
        parts = []
        for c in self.contacts:
            if c.kind == "phone":
                parts.append(f"call {c.value}")
            elif c.kind == "text":
                parts.append(f"text {c.note.split()[-1] + ' to ' if c.note else ''}{c.value}")
            elif c.kind == "email":
                parts.append(f"email {c.value}")
            else:
                parts.append(c.value)
        hours = f" ({self.hours})" if self.hours else ""
        return f"{self.name}{hours}: {', '.join(parts)}"


class ResourceDirectory(_Strict):
    version: int
    checked: date
    resources: list[Resource] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> "ResourceDirectory":
        domains = set(default_taxonomy().domain_ids())
        ids = [r.id for r in self.resources]
        dupes = sorted({x for x in ids if ids.count(x) > 1})
        if dupes:
            raise ValueError(f"duplicate resource id(s): {', '.join(dupes)}")
        for i, r in enumerate(self.resources):
            unknown = [d for d in r.domains if d not in domains]
            if unknown:
                raise ValueError(f"resources[{i}] ({r.id}).domains: unknown domain(s) {unknown}; expected {sorted(domains)}")
        for locale in self.locales():
            for d in sorted(domains):
                if not self.for_domain(d, locale):
                    raise ValueError(f"locale {locale} has no resource for domain '{d}'")
        return self

    def locales(self) -> list[str]:
        return sorted({r.locale for r in self.resources})

    def for_domain(self, domain: str, locale: str) -> list[Resource]:
        return [r for r in self.resources if r.locale == locale and domain in r.domains]

    def contact_index(self, locale: str) -> dict[str, str]:
        """Normalised contact key -> resource id, for one locale."""
        return {c.key: r.id for r in self.resources if r.locale == locale for c in r.contacts}


def contact_key(kind: str, value: str) -> str:
    """Normalise a contact so that '1-800-662-4357', '(800) 662 4357' and '18006624357' match."""
    if kind in ("phone", "text"):
        digits = re.sub(r"\D", "", value)
        if len(digits) == 11 and digits.startswith("1"):  # NANP country code
            digits = digits[1:]
        if digits.startswith("44") and len(digits) > 10:  # UK +44 -> national 0
            digits = "0" + digits[2:]
        return f"tel:{digits}"
    if kind == "url":
        host_path = re.sub(r"^(https?://)?(www\.)?", "", value.strip().lower()).rstrip("/.")
        return f"url:{host_path.split('/')[0]}"  # a page on a verified site is verified
    return f"email:{value.strip().lower()}"


def load_resources(path: str | Path = RESOURCES_FILE) -> ResourceDirectory:
    return load_model(path, ResourceDirectory)


@cache
def default_resources() -> ResourceDirectory:
    return load_resources()
