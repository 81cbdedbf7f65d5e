"""The resource directory: evidence on every entry, one service per contact, coverage, phone normalisation."""

import re

import pytest
import yaml

from psychosafe.errors import InputError
from psychosafe.schemas import contact_key, default_resources, default_taxonomy, load_resources
from psychosafe.schemas.resources import DIALLING, RESOURCES_FILE, Listing, keypad_digits


@pytest.fixture(scope="module")
def directory():
    return default_resources()


def _write(tmp_path, data, name="resources.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def _edited(tmp_path, edit):
    data = yaml.safe_load(RESOURCES_FILE.read_text())
    edit(data)
    return _write(tmp_path, data)


def _entry(data, rid):
    return next(r for r in data["resources"] if r["id"] == rid)


# -- the directory as shipped ----------------------------------------------------------------------------

def test_at_least_15_locales_and_120_services(directory):
    assert len(directory.locales()) >= 15
    assert len(directory.resources) >= 120
    assert set(directory.locales()) <= set(DIALLING)
    assert {"en-US", "en-GB", "en-IE", "en-AU", "de-DE", "fr-FR", "es-ES", "it-IT", "nl-NL"} <= set(directory.locales())


def test_every_entry_has_an_evidence_page_a_date_and_a_fact(directory):
    for r in directory.resources:
        assert r.evidence, r.id
        for e in r.evidence:
            assert str(e.page).startswith(("https://", "http://")), r.id
            assert e.date <= directory.checked, r.id
            assert e.dated in ("checked", "page"), r.id
            assert len(e.fact.split()) >= 4, (r.id, e.fact)
        # the day of checking is the directory's; a page's own date is earlier
        assert all(e.date == directory.checked for e in r.evidence if e.dated == "checked"), r.id


def test_no_contact_is_listed_under_two_services(directory):
    for key, listings in directory.owners.items():
        assert len({x.resource_id for x in listings}) == 1, (key, listings)
    # the same digits in two countries are two services, not one
    gb = directory.lookup("phone", "0800 555 111")
    assert {x.resource_id for x in gb} == {"gb_crimestoppers", "nz_crime_stoppers"}
    assert contact_key("phone", "0800 555 111", "en-GB") != contact_key("phone", "0800 555 111", "en-NZ")


def test_every_locale_covers_every_domain_with_its_own_service_and_an_emergency_number(directory):
    for locale in directory.locales():
        own = [r for r in directory.resources if locale in r.locales]
        assert any(r.type == "emergency" for r in own), locale
        for domain in default_taxonomy().domain_ids():
            assert [r for r in own if domain in r.domains and r.type != "emergency"], (locale, domain)
            listed = directory.for_domain(domain, locale)
            assert listed and listed[-1].type == "emergency", (locale, domain)


def test_the_services_the_published_corpus_cites_are_listed(directory):
    expected = {
        ("116 123", "en-GB"): "gb_samaritans", ("988", "en-US"): "us_988_lifeline",
        ("0808 802 4040", "en-GB"): "gb_respect_phoneline", ("0808 1000 900", "en-GB"): "gb_stop_it_now",
        ("1-800-656-HOPE", "en-US"): "us_rainn_hotline", ("741741", "en-US"): "us_crisis_text_line",
        ("https://www.na.org", None): "intl_narcotics_anonymous",
    }
    for (value, locale), rid in expected.items():
        kind = "url" if value.startswith("https://") else "phone"
        assert Listing(rid, locale) in directory.lookup(kind, value), (value, rid)


# -- normalisation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("locale, written, national", [
    ("en-AU", "+61 13 11 14", "13 11 14"),
    ("en-GB", "+44 116 123", "116 123"),
    ("en-GB", "+44 (0)808 802 4040", "0808 802 4040"),
    ("en-GB", "0044 808 802 4040", "0808-802-4040"),
    ("en-US", "+1 (800) 656-4673", "1-800-656-HOPE"),
    ("en-US", "800.656.4673", "1 800 656 4673"),
    ("en-IE", "+353 1800 247 247", "1800 247 247"),
    ("nl-NL", "+31 800 0113", "0800-0113"),
    ("it-IT", "+39 02 2327 2327", "02 2327 2327"),  # Italy keeps its leading 0 after the country code
    ("en-ZA", "+27 800 428 428", "0800 428 428"),
])
def test_a_number_written_nationally_or_internationally_gives_one_key(locale, written, national):
    assert contact_key("phone", written, locale) == contact_key("phone", national, locale)


def test_short_codes_belong_to_their_region_and_keep_their_digits():
    assert contact_key("phone", "116 123", "en-GB") == "tel:GB:116123"
    assert contact_key("phone", "116 123", "en-IE") == "tel:IE:116123"
    assert contact_key("phone", "116 123", "en-US") == "tel:US:116123"
    assert contact_key("phone", "000", "en-AU") == "tel:AU:000"  # a trunk prefix is never stripped from a short code
    assert contact_key("phone", "024", "es-ES") == "tel:ES:024"
    assert contact_key("phone", "0808 802 4040", "en-GB") == "tel:+448088024040"
    assert contact_key("phone", "1-800-222-1222", "en-US") == "tel:+18002221222"
    # phone and text numbers share keys: a number listed as one is found as the other
    assert contact_key("text", "85258", "en-GB") == contact_key("phone", "85258", "en-GB")
    with pytest.raises(ValueError, match="no dialling plan for locale 'pt-BR'"):
        contact_key("phone", "188", "pt-BR")


def test_without_a_locale_a_number_is_read_as_written():
    assert contact_key("phone", "+44 116 123") == contact_key("phone", "116 123", "en-GB")
    assert contact_key("phone", "1-800-662-4357") == contact_key("phone", "(800) 662-4357") == "tel:8006624357"
    assert contact_key("phone", "0808 500 2222") == "tel:08085002222"
    assert contact_key("phone", "+7 495 000 00 00") == "tel:+74950000000"  # a country outside the directory
    assert contact_key("url", "https://www.Samaritans.org/how-we-can-help/") == "url:samaritans.org"
    assert contact_key("email", " Jo@Samaritans.org") == "email:jo@samaritans.org"


def test_vanity_numbers_are_read_as_their_digits(directory):
    assert keypad_digits("1-800-656-HOPE") == "18006564673"
    assert keypad_digits("0800 POISON") == "0800764766"
    index = directory.contact_index("en-AU")
    # letters past the last digit are not dialled: 1800RESPECT is 1800 737 732
    assert index[contact_key("phone", "1800 737 732", "en-AU")] == "au_1800respect"
    assert index[contact_key("phone", "1800RESPECT", "en-AU")] == "au_1800respect"
    assert Listing("nz_national_poisons_centre", "en-NZ") in directory.lookup("phone", "0800 POISON")


# -- lookups ---------------------------------------------------------------------------------------------

def test_lookup_tells_this_locale_from_another_from_unknown(directory):
    samaritans = directory.lookup("phone", "116 123")
    assert samaritans == [Listing("gb_samaritans", "en-GB"), Listing("gb_samaritans", "en-IE")]
    assert not any(x.locale == "en-US" for x in samaritans)  # a real service, of another locale, for a US record
    assert {x.locale for x in directory.lookup("phone", "911")} == {"en-US", "en-CA", "en-PH"}
    assert {x.resource_id for x in directory.lookup("phone", "988")} == {"us_988_lifeline", "ca_988_helpline"}
    assert directory.lookup("phone", "(800) 555-0199") == []
    assert directory.lookup("url", "https://www.free-help-now.com") == []
    assert directory.lookup("url", "https://befrienders.org/about-us") == [Listing("intl_befrienders_worldwide", None)]


def test_a_contact_limited_to_some_locales_is_listed_only_there(directory):
    # Stop It Now's freephone is for UK callers; Irish callers use the +44 number
    assert directory.lookup("phone", "0808 1000 900") == [Listing("gb_stop_it_now", "en-GB")]
    assert directory.lookup("phone", "+44 1372 847 161") == [Listing("gb_stop_it_now", "en-GB"),
                                                              Listing("gb_stop_it_now", "en-IE")]
    assert contact_key("phone", "0808 1000 900", "en-IE") not in directory.contact_index("en-IE")


def test_contact_index_holds_the_locale_its_international_entries_and_nothing_else(directory):
    us = directory.contact_index("en-US")
    assert us[contact_key("phone", "911", "en-US")] == "na_emergency_911"
    assert us[contact_key("url", "https://findahelpline.com/US")] == "intl_find_a_helpline"
    assert contact_key("phone", "116 123", "en-US") not in us and contact_key("phone", "116 123") not in us
    assert directory.contact_index("en-CA")[contact_key("phone", "988", "en-CA")] == "ca_988_helpline"


def test_prompt_lines_name_the_keyword_and_leave_regional_services_out(directory):
    assert directory.resource("us_crisis_text_line").describe() == "Crisis Text Line (24/7): text HOME to 741741"
    # the former Lifeline number is still answered, so verified, but prompts offer 988
    assert "273-8255" not in directory.resource("us_988_lifeline").describe()
    assert directory.lookup("phone", "1-800-273-TALK") == [Listing("us_988_lifeline", "en-US")]
    au = [r.id for r in directory.for_domain("suicide_self_harm", "en-AU")]
    assert "au_lifeline" in au and "au_suicideline_victoria" not in au
    assert au[-1] == "au_emergency_000"
    assert "intl_find_a_helpline" not in [r.id for r in directory.for_domain("substance", "en-US")]


def test_international_entries_fill_only_a_domain_a_locale_lacks(tmp_path):
    evidence = [{"page": "https://example.org/", "date": "2026-11-29", "dated": "checked",
                 "fact": "the page gives the number used here"}]
    domains = default_taxonomy().domain_ids()

    def entry(rid, type_, doms, value, **extra):
        return {"id": rid, "name": rid, "type": type_, "domains": doms, "evidence": evidence,
                "contacts": [{"kind": "phone", "value": value}], **extra}

    data = {"version": 1, "checked": "2026-11-29", "resources": [
        entry("gb_line", "crisis_line", [d for d in domains if d != "sexual_crimes"], "116 123", locales=["en-GB"]),
        entry("gb_regional", "sexual_violence", ["sexual_crimes"], "0808 500 2222", locales=["en-GB"], area="Wales"),
        entry("gb_999", "emergency", domains, "999", locales=["en-GB"]),
        {**entry("intl_dir", "directory", domains, "1"), "international": True,
         "contacts": [{"kind": "url", "value": "https://findahelpline.com"}]},
    ]}
    d = load_resources(_write(tmp_path, data))
    assert [r.id for r in d.for_domain("sexual_crimes", "en-GB")] == ["intl_dir", "gb_999"]
    assert [r.id for r in d.for_domain("violence", "en-GB")] == ["gb_line", "gb_999"]
    assert d.locales() == ["en-GB"]


# -- malformed entries fail naming the entry --------------------------------------------------------------

def test_an_entry_without_evidence_is_named(tmp_path):
    path = _edited(tmp_path, lambda d: _entry(d, "gb_respect_phoneline").pop("evidence"))
    with pytest.raises(InputError) as err:
        load_resources(path)
    message = str(err.value)
    assert str(path) in message and re.search(r"resources\[\d+\] \(gb_respect_phoneline\)\.evidence", message)


def test_a_contact_under_two_services_is_named(tmp_path):
    path = _edited(tmp_path, lambda d: _entry(d, "gb_papyrus_hopeline")["contacts"].append(
        {"kind": "phone", "value": "+44 116 123"}))
    with pytest.raises(InputError, match=r"contact tel:GB:116123 is listed under several services: "
                                         r"gb_papyrus_hopeline, gb_samaritans"):
        load_resources(path)


@pytest.mark.parametrize("edit, expected", [
    (lambda d: _entry(d, "us_rainn_hotline")["contacts"][0].update(vanity="1-800-656-HELP"),
     r"\(us_rainn_hotline\)\.contacts\[0\].*vanity form '1-800-656-HELP' dials 18006564357"),
    (lambda d: _entry(d, "gb_shout").update(locales=["en-GB", "pt-BR"]),
     r"\(gb_shout\)\.locales: no dialling plan for \['pt-BR'\]"),
    (lambda d: _entry(d, "intl_narcotics_anonymous").update(locales=["en-US"]),
     r"\(intl_narcotics_anonymous\).*either `locales`.*or `international: true`"),
    (lambda d: _entry(d, "gb_childline")["evidence"][0].update(date="2027-01-01"),
     r"\(gb_childline\)\.evidence: dated after the directory's `checked`"),
    (lambda d: _entry(d, "gb_childline")["evidence"][0].update(page="not a page"),
     r"\(gb_childline\)\.evidence\[0\]\.page"),
    (lambda d: _entry(d, "gb_childline").update(type="hotline"),
     r"\(gb_childline\)\.type"),
    (lambda d: _entry(d, "gb_stop_it_now")["contacts"][0].update(locales=["en-AU"]),
     r"\(gb_stop_it_now\).*contacts\[0\]\.locales \['en-AU'\] are not among"),
    (lambda d: d.update(resources=[r for r in d["resources"] if r["id"] != "nl_emergency_112"]),
     r"locale nl-NL has no emergency-number entry"),
])
def test_malformed_entries_fail_naming_the_entry(tmp_path, edit, expected):
    with pytest.raises(InputError, match=expected):
        load_resources(_edited(tmp_path, edit))
