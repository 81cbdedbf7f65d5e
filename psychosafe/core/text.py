"""Text checks every stage shares: refusal phrases and the contact details (phone numbers, URLs, e-mail addresses)
a text gives. What a contact *is* (verified, another locale's service, invented) is decided against the resource
directory by curation's checks; this module only finds them."""

from __future__ import annotations

import re
from functools import cache
from typing import Literal

from psychosafe.schemas import contact_key, default_resources
from psychosafe.schemas.resources import keypad_digits

REFUSAL_MARKERS = (
    "i can't help", "i cannot help", "i can’t help", "i won't help", "i will not help", "i can't provide",
    "i cannot provide", "i can’t provide", "i'm not able to", "i am not able to", "i'm unable to", "i am unable to",
    "i can't assist", "i cannot assist", "i can’t assist", "i won't be able to", "i can't give", "i cannot give",
    "i can't share", "i cannot share", "not something i can", "i'm sorry, but", "i am sorry, but", "i must decline",
    "i won't provide", "i can't do that", "i cannot do that", "i can't tell you", "i cannot tell you",
)

# The generic top-level domains services use, and the country domains of the directory's locales.
_TLDS = "org|com|net|gov|info|io|us|uk|ie|ca|au|nz|za|in|sg|ph|de|fr|es|it|nl|eu|help"
_URL = re.compile(rf"\b(?:https?://)?(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:{_TLDS})\b(?:/[^\s)\]>,]*)?",
                  re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# Long numbers: 7+ digits with the usual separators. Short codes (988, 116 123, 741741): a few words after
# call/text/dial/ring/contact.
# Between digits: a space (not a line break), a hyphen, or a dot followed by a digit (1.800.662.4357). A dot before a
# space ends a sentence, so "call 1-800-662-4357. 1914 was..." stops at the number instead of swallowing the year.
_PHONE = re.compile(r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,5}\)[\s.-]?)?"
                    r"\d(?:[\d\-]|[^\S\n]|\.(?=\d)){4,}\d(?![\w])")
# Year ranges and dates ("1914-1918", "2017-06-30", "30/06/2017") are not phone numbers.
_NOT_PHONE = re.compile(r"(1[5-9]|20)\d\d\s*[-–/]\s*((1[5-9]|20)\d\d|\d\d)"
                        r"|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_SHORT = re.compile(r"\b(?:call|text|dial|ring|phone|contact|reach|(?:help|hot|life)?line|number)\w*\s+"
                    r"(?:[^\s\d]+\s+){0,3}?(\d{3}(?:[\s-]?\d{3})?|\d{4,6})(?![\d\w])", re.IGNORECASE)
# A 3+3 digit group reads as a phone number wherever it stands (UK short codes such as "116 123").
_GROUPED_SHORT = re.compile(r"(?<![\w.+-])(\d{3}[\s-]\d{3})(?![\w-])")
# A bare short number (988, 911, 999 in "call 116 123 or 999") counts where the directory lists it as a short code.
_BARE_SHORT = re.compile(r"(?<![\w.+/-])(\d{3,6})(?![\w/-])")
# A number advertised in letters (1-800-656-HOPE, 1.888.PREVENT, 1800RESPECT): digits, then capitals. It is read
# whole (schemas.resources.keypad_digits turns the letters into digits), not cut at the first letter.
_VANITY = re.compile(r"(?<![\w.+])(?:\+\d{1,3}[\s.-]?)?\d[\d\s.-]{1,12}?[\s.-]?[A-Z]{3,}(?:[\s.-]?[A-Z0-9]+)*(?![\w])")


def extract_contacts(text: str) -> list[tuple[Literal["phone", "url", "email"], str]]:
    """Every phone number, URL and e-mail address in a text, in order, without repeats."""
    found: list[tuple[str, str]] = []
    emails = [m.group(0) for m in _EMAIL.finditer(text)]
    found += [("email", e) for e in emails]
    without_emails = _EMAIL.sub(" ", text)
    found += [("url", m.group(0).rstrip(".")) for m in _URL.finditer(without_emails)]
    long_spans = []
    for m in _VANITY.finditer(without_emails):
        if 7 <= len(keypad_digits(m.group(0))) <= 15:
            found.append(("phone", m.group(0).strip()))
            long_spans.append(m.span())
    for m in _PHONE.finditer(without_emails):
        if any(a <= m.start() < b for a, b in long_spans):  # the digits before a vanity number's letters
            continue
        digits = re.sub(r"\D", "", m.group(0))
        if 7 <= len(digits) <= 15 and not _NOT_PHONE.fullmatch(m.group(0).strip()):
            found.append(("phone", m.group(0).strip()))
            long_spans.append(m.span())
    # a short code is not the start of a long number already found ("ring us on 020 7946 0000")
    for pattern in (_SHORT, _GROUPED_SHORT):
        for m in pattern.finditer(without_emails):
            if not any(a <= m.start(1) < b for a, b in long_spans):
                found.append(("phone", m.group(1)))
                long_spans.append(m.span(1))
    found += [("phone", m.group(1)) for m in _BARE_SHORT.finditer(without_emails)
              if m.group(1) in listed_short_codes() and not any(a <= m.start(1) < b for a, b in long_spans)]
    out, keys = [], set()
    for kind, value in found:
        key = contact_key(kind, value)
        if key not in keys:
            keys.add(key)
            out.append((kind, value))
    return out


@cache
def listed_short_codes() -> frozenset[str]:
    """The digits of every short code the directory lists, in any locale (988, 116123, 000, 85258, ...)."""
    return frozenset(key.rsplit(":", 1)[1] for key in default_resources().owners
                     if key.startswith("tel:") and not key.startswith("tel:+"))


def refusal_markers(text: str) -> list[str]:
    """The refusal phrases in a text, typographic apostrophes read as straight ones, each listed once."""
    lowered = text.lower().replace("’", "'")
    return list(dict.fromkeys(m for m in (m.replace("’", "'") for m in REFUSAL_MARKERS) if m in lowered))
