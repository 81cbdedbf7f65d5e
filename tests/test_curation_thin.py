from psychosafe.core.text import extract_contacts
from psychosafe.curation import apply_checks, balance_domains, dedup_exact, split_by_domain
from psychosafe.schemas import Record, record_id

DOMAINS = ["suicide_self_harm", "substance", "violence", "weapon", "sexual_crimes"]


def rec(prompt, domain="substance", label="harmful", response="", category=None, locale="en-US"):
    return Record(id=record_id(prompt, domain), prompt=prompt, domain=domain, label=label, response=response,
                  category=category, locale=locale)


def test_extract_contacts_finds_phones_urls_emails_and_skips_dates():
    text = ("Call 988 or text HOME to 741741, or 1-800-662-4357 (24/7). See https://www.samaritans.org/help or "
            "email jo@samaritans.org. The war lasted 1914-1918; on 2017-06-30 it was 30 degrees.")
    assert [v for _, v in extract_contacts(text)] == ["jo@samaritans.org", "https://www.samaritans.org/help",
                                                      "1-800-662-4357", "988", "741741"]


def test_checks_block_fabricated_numbers_and_verify_real_ones():
    real = rec("a", response="I can't help with that. Please call 1-800-662-4357 or visit samhsa.gov.")
    fake = rec("b", response="I can't help with that. Call the hotline at 1-800-555-0199.")
    wrong_locale = rec("c", response="I can't help with that. Call Samaritans on 116 123.", locale="en-US")
    benign_refused = rec("d", label="benign", response="I'm sorry, but I cannot help with that.")
    result = apply_checks([real, fake, wrong_locale, benign_refused])
    # a real service of another locale (Samaritans in an en-US record) is flagged, not blocked (tests/test_contacts.py)
    assert [r.id for r in result.kept] == [real.id, wrong_locale.id]
    assert result.kept[0].resources == ["us_samhsa_helpline"] and result.kept[0].checks.passed
    assert [c.outcome for c in result.kept[1].checks.contacts] == ["other_locale"]
    reasons = {r.id: r.reason for r in result.rejected}
    assert reasons[fake.id] == "unknown contact detail: '1-800-555-0199' is in no directory entry"
    blocked = apply_checks([wrong_locale], other_locale="block")
    assert blocked.rejected[0].reason == ("other locale contact detail: '116 123' is Samaritans, listed for en-GB, "
                                          "en-IE")
    assert reasons[benign_refused.id] == "benign prompt refused: i cannot help, i'm sorry, but"
    flagged = apply_checks([benign_refused], on_refusal_mismatch="flag")
    assert flagged.kept and flagged.kept[0].checks.passed is False


def test_exact_dedup_points_to_the_kept_record():
    a, b = rec("How do I hide pills?"), rec("how do i hide pills")
    result = dedup_exact([a, b])
    assert result.kept == [a]
    assert result.rejected[0].duplicate_of == a.id and result.rejected[0].stage == "dedup_exact"


def test_balance_fills_quotas_round_robin_and_reports_shortfall():
    records = [rec(f"p{d}{i}", domain=d, category=f"c{i % 2}") for d in DOMAINS for i in range(6)]
    records += [rec(f"b{d}", domain=d, label="benign") for d in DOMAINS[:4]]
    result = balance_domains(records, target=25, domains=DOMAINS, benign_fraction=0.2, seed=1)
    kept = {d: [r for r in result.kept if r.domain == d] for d in DOMAINS}
    assert [len(kept[d]) for d in DOMAINS] == [5, 5, 5, 5, 4]  # 4 harmful + 1 benign; the last has no benign
    assert result.notes["shortfall"] == {"sexual_crimes/benign": 1}
    harmful = [r for r in kept["substance"] if r.label == "harmful"]
    assert sorted(r.category for r in harmful) == ["c0", "c0", "c1", "c1"]
    assert len(result.rejected) == len(records) - len(result.kept)
    again = balance_domains(records, target=25, domains=DOMAINS, benign_fraction=0.2, seed=1)
    assert [r.id for r in again.kept] == [r.id for r in result.kept]


def test_split_is_stratified_deterministic_and_keeps_train_for_small_domains():
    records = [rec(f"p{d}{i}", domain=d) for d in DOMAINS for i in range(10)]
    splits, shortfall = split_by_domain(records, validation_per_domain=2, test_per_domain=3, seed=7)
    assert (len(splits["validation"]), len(splits["test"]), len(splits["train"])) == (10, 15, 25)
    again, _ = split_by_domain(list(reversed(records)), validation_per_domain=2, test_per_domain=3, seed=7)
    # the input order changes nothing: each split lists the same records in the same order
    assert {k: [r.id for r in v] for k, v in again.items()} == {k: [r.id for r in v] for k, v in splits.items()}
    small, shortfall = split_by_domain(records[:4], validation_per_domain=2, test_per_domain=2, seed=7)
    assert len(small["train"]) == 2 and shortfall == {"suicide_self_harm": {"records": 4, "validation": 1, "test": 1}}
