"""Contact details against the directory: four outcomes, off-domain services, emergency and vanity numbers."""

from psychosafe.core.text import extract_contacts
from psychosafe.curation.checks import apply_checks, check_record, contact_table
from psychosafe.curation.contacts import classify_contacts
from psychosafe.schemas import Record, record_id


def outcomes(text, locale="en-US", domain="suicide_self_harm"):
    return [(c.contact, c.outcome, c.resource, c.expected) for c in classify_contacts(text, locale, domain)]


def test_four_outcomes():
    assert outcomes("Call Samaritans on 116 123, or call or text 988.") == [
        ("116 123", "other_locale", "gb_samaritans", None), ("988", "verified", "us_988_lifeline", None)]
    assert outcomes("Call Samaritans on 116 123.", locale="en-GB") == [("116 123", "verified", "gb_samaritans", None)]
    # split by a stray separator, and one digit short: the listed form is named
    assert outcomes("Call the Respect Phoneline on 0808-802- 4040 or 0808 802 404.", "en-GB", "violence") == [
        ("0808-802- 4040", "malformed", "gb_respect_phoneline", "0808 802 4040"),
        ("0808 802 404", "malformed", "gb_respect_phoneline", "0808 802 4040")]
    assert outcomes("Visit 988lifline.org for help.")[0][1:3] == ("malformed", "us_988_lifeline")
    assert outcomes("Call the hotline at 1-800-555-0199.") == [("1-800-555-0199", "unknown", None, None)]


def test_one_number_written_two_ways_is_one_contact():
    assert outcomes("Call +44 808 802 4040 (0808 802 4040 from a UK phone).", "en-GB", "violence") == [
        ("+44 808 802 4040", "verified", "gb_respect_phoneline", None)]


def test_emergency_vanity_and_off_domain():
    found = classify_contacts("Call 1-800-656-HOPE now, or 911 in an emergency; abroad, 999.", "en-US",
                              "substance")
    assert [(c.contact, c.outcome, c.resource, c.emergency, c.off_domain) for c in found] == [
        ("1-800-656-HOPE", "verified", "us_rainn_hotline", False, True),  # RAINN is not a substance service
        ("911", "verified", "na_emergency_911", True, False),
        ("999", "other_locale", "gb_emergency_999", True, False)]
    # read whole, not cut at the first letter
    assert extract_contacts("ring 1.888.PREVENT or 1800RESPECT") == [("phone", "1.888.PREVENT"),
                                                                    ("phone", "1800RESPECT")]


def _record(prompt, response, locale="en-US", domain="suicide_self_harm"):
    return Record(id=record_id(prompt, domain), prompt=prompt, domain=domain, label="harmful", response=response,
                  locale=locale)


def test_real_services_of_another_locale_are_flagged_not_blocked_unless_configured():
    uk = _record("a", "I can't help with that. Please call Samaritans on 116 123 or 988.")
    fake = _record("b", "I can't help with that. Call 1-800-555-0199.")
    split = _record("c", "I can't help with that. Call 0808-802- 4040.", locale="en-GB", domain="violence")
    result = apply_checks([uk, fake, split])
    assert [r.id for r in result.kept] == [uk.id]
    assert result.kept[0].checks.passed and result.kept[0].resources == ["us_988_lifeline"]
    assert {r.code for r in result.rejected} == {"unverified_contact", "malformed_contact"}
    assert result.notes["contact_outcomes"] == {"other_locale": 1, "verified": 1, "unknown": 1, "malformed": 1}
    assert [r.code for r in apply_checks([uk], other_locale="block").rejected] == ["other_locale_contact"]
    assert check_record(uk, other_locale="block").checks.unverified_contacts == ["116 123"]
    assert contact_table([check_record(r) for r in (uk, fake, uk)]) == [
        ["116 123", "other_locale", 2], ["988", "verified", 2], ["1-800-555-0199", "unknown", 1]]


def test_a_number_ends_where_its_sentence_does():
    # a dot before a space ends the number: an invented one followed by a sentence with digits is still found
    assert outcomes("Call the hotline at 1-800-555-0199. 2 things help: rest and water.") == [
        ("1-800-555-0199", "unknown", None, None)]
    assert extract_contacts("or 1-800-662-4357. The war lasted 1914-1918.") == [("phone", "1-800-662-4357")]
    assert extract_contacts("Call 1.800.662.4357 today") == [("phone", "1.800.662.4357")]
    # the trunk prefix in brackets after a country code belongs to the number
    assert outcomes("Call +44 (0)808 802 4040.", "en-GB", "violence") == [
        ("+44 (0)808 802 4040", "verified", "gb_respect_phoneline", None)]
