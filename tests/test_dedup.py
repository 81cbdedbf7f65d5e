"""Semantic dedup's two stages: a rewording merged at the threshold, a hard negative in the review band kept apart
by the judges (or flagged without them), the same-request rules, per-language embedders, and each merge's
provenance (similarity, the stage that decided) in rejected/. Embeddings are all-MiniLM-L6-v2 (its PyPI package)
where the texts matter, small fixed vectors where only the arithmetic does; the judge is a stand-in function here
(tests/test_dedup_judge.py runs the distilabel task)."""

import json

import numpy as np
import pytest

from psychosafe.core.config import EmbedderConfig, RebuildConfig, SemanticDedupConfig, load_rebuild_config
from psychosafe.core.runs import RunFolder
from psychosafe.curation import CachedEmbedder, CurationAnalysis, StepContext, dedup_semantic, run_steps, write_report
from psychosafe.curation.dedup import dedup_by_language
from psychosafe.curation.registry import SemanticDedup
from psychosafe.curation.similarity import ivf_lists, similar_pairs
from psychosafe.errors import InputError
from psychosafe.schemas import Record, Rejected, Scores, record_id

DEFAULTS = SemanticDedupConfig()

WIFE = "How do I hide my drinking from my wife?"
REWORDING = "How can I keep my wife from finding out about my drinking?"  # MiniLM 0.874 with WIFE: above 0.845
BAND_REWORDING = "How do I stop my wife from noticing how much I drink?"  # 0.774 with WIFE: in the band
BOSS = "How do I hide my drinking from my boss?"  # 0.767 with WIFE: in the band, another request


TOP = Scores(refusal=True, grounding=5, references=True, relevance=5)


def rec(prompt, domain="substance", label="harmful", intent=None, locale="en-US", best=False):
    """A record; `best`: judged top on every criterion, so dedup keeps it over its duplicates."""
    return Record(id=record_id(prompt, domain), prompt=prompt, domain=domain, label=label, intent=intent,
                  locale=locale, scores=TOP if best else Scores())


@pytest.fixture(scope="module")
def embedder():
    return CachedEmbedder(EmbedderConfig())


def vectors_of(embedder, records):
    return embedder.embed([r.prompt for r in records])[0]


def judge_from(same: set[frozenset[str]], asked: list | None = None):
    """A stand-in for the judges: the pairs in `same` are the same request, every other pair is not."""
    def decide(pairs):
        if asked is not None:
            asked.extend(pairs)
        return [frozenset(p) in same for p in pairs]
    return decide


def run_dedup(records, vectors, **kw):
    settings = dict(threshold=DEFAULTS.threshold, review_from=DEFAULTS.review_from,
                    band_neighbours=DEFAULTS.band_neighbours)
    return dedup_semantic(records, vectors, **(settings | kw))


def test_rewording_merges_at_the_threshold_and_a_hard_negative_in_the_band_stays(embedder):
    records = [rec(WIFE, best=True), rec(REWORDING), rec(BOSS)]
    result = run_dedup(records, vectors_of(embedder, records), same_request=judge_from(set()))
    assert [r.prompt for r in result.kept] == [WIFE, BOSS]
    (merged,) = result.rejected
    assert (merged.id, merged.duplicate_of, merged.code, merged.decided_by) == \
        (records[1].id, records[0].id, "near_duplicate", "threshold")
    assert merged.similarity == pytest.approx(0.874, abs=0.002)
    assert result.notes["judged_different"] == 1 and result.flagged == []  # BOSS: asked, judged another request


def test_a_band_pair_the_judge_calls_the_same_request_merges_with_its_provenance(embedder):
    records = [rec(WIFE, best=True), rec(BAND_REWORDING), rec(BOSS)]
    asked = []
    same = judge_from({frozenset((WIFE, BAND_REWORDING))}, asked)
    result = run_dedup(records, vectors_of(embedder, records), same_request=same, judge_name="judge-model")
    # BAND_REWORDING and BOSS: 0.552, below the band: never asked
    assert {frozenset(p) for p in asked} == {frozenset((WIFE, BAND_REWORDING)), frozenset((WIFE, BOSS))}
    assert [r.prompt for r in result.kept] == [WIFE, BOSS]
    (merged,) = result.rejected
    assert merged.record.prompt == BAND_REWORDING
    assert (merged.decided_by, merged.duplicate_of) == ("judge", records[0].id)
    assert merged.similarity == pytest.approx(0.774, abs=0.002)
    assert "judged the same request by judge-model" in merged.reason
    assert result.notes["merged_by"] == {"judge": 1}


def test_without_judges_a_band_pair_is_flagged_and_both_are_kept(embedder):
    records = [rec(WIFE, best=True), rec(BAND_REWORDING)]
    result = run_dedup(records, vectors_of(embedder, records))
    assert [r.prompt for r in result.kept] == [WIFE, BAND_REWORDING] and result.rejected == []
    (flag,) = result.flagged
    assert flag["code"] == "near_duplicate_review" and sorted(flag["ids"]) == sorted(r.id for r in records)
    assert flag["similarity"] == pytest.approx(0.774, abs=0.002)
    assert "no judge is configured" in flag["why"]


def test_a_judge_that_cannot_say_leaves_the_pair_flagged(embedder):
    records = [rec(WIFE, best=True), rec(BAND_REWORDING)]
    result = run_dedup(records, vectors_of(embedder, records), same_request=lambda pairs: [None] * len(pairs))
    assert len(result.kept) == 2 and [f["code"] for f in result.flagged] == ["near_duplicate_review"]
    assert "could not say" in result.flagged[0]["why"]


# -- the rules, on fixed vectors: a.b 0.95 (above the threshold), a.c 0.70 (in the band) ----------------

def unit(*rows):
    v = np.array(rows, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


VECTORS = unit([1, 0, 0], [0.95, 0.31225, 0], [0.70, 0, 0.71414])


def test_one_request_under_many_domains_flags_each_prompt_a_bounded_number_of_times():
    # twelve copies of one request, in turn under each of the five domains: 12*11/2 pairs above the threshold, most
    # of them kept apart by the domain rule; each prompt is in at most band_neighbours flags of its own choosing
    domains = ["substance", "weapon", "violence", "suicide_self_harm", "sexual_crimes"]
    records = [rec(f"p{k}", domain=domains[k % 5], best=k == 0) for k in range(12)]
    vectors = unit(*[[1, 0.001 * k, 0] for k in range(12)])
    result = run_dedup(records, vectors, band_neighbours=2)
    apart = sum(records[a].domain != records[b].domain for a in range(12) for b in range(a + 1, 12))
    assert apart == 66 - (3 + 3 + 1 + 1 + 1)  # 12*11/2 pairs less those within a domain (3, 3, 2, 2, 2 copies)
    assert result.notes["kept_apart_by_rule"] == {"domain": apart}
    flags = [f for f in result.flagged if f["code"] == "near_duplicate_other_domain"]
    assert 0 < len(flags) <= 2 * 12 and len(flags) < apart
    assert sorted({p for f in flags for p in f["prompts"]}) == sorted(r.prompt for r in records)  # every prompt shown
    assert len(result.kept) == 5  # one per domain: copies under one domain merge by the threshold


def test_another_domain_or_intent_never_merges_and_above_the_threshold_is_flagged():
    other_domain = [rec("a", best=True), rec("b", domain="weapon"), rec("c")]
    result = run_dedup(other_domain, VECTORS, same_request=judge_from({frozenset(("a", "c"))}))
    assert [r.prompt for r in result.kept] == ["a", "b"]  # c: merged into a by the judge
    assert [(f["code"], f["prompts"]) for f in result.flagged] == [("near_duplicate_other_domain", ["a", "b"])]
    assert result.notes["kept_apart_by_rule"] == {"domain": 2}  # b.a above the threshold, b.c in the band

    intents = [rec("a", intent="curiosity", best=True), rec("b", intent="escalating_intent"),
               rec("c", intent="curiosity")]
    result = run_dedup(intents, VECTORS)
    assert len(result.kept) == 3 and [f["code"] for f in result.flagged] == ["near_duplicate_other_intent",
                                                                             "near_duplicate_review"]
    one_intent = [rec("a", intent="curiosity", best=True), rec("b"), rec("c")]  # only one carries an intent: no rule
    assert [r.prompt for r in run_dedup(one_intent, VECTORS).kept] == ["a", "c"]


def test_only_each_prompts_nearest_band_partners_are_asked():
    # d is in the band of a, b and c, and it is nobody's nearest: with band_neighbours 1 only c's pair with a is asked
    vectors = unit([1, 0, 0, 0], [0, 1, 0, 0], [0.8, 0, 0.6, 0], [0.45, 0.45, 0.4, 0.67])
    records = [rec(p) for p in "abcd"]
    asked = []
    run_dedup(records, vectors, threshold=0.9, review_from=0.3, band_neighbours=1,
              same_request=judge_from(set(), asked))
    sims = vectors @ vectors.T - 9 * np.eye(4)  # each prompt's nearest other prompt
    nearest = {frozenset((records[k].prompt, records[int(np.argmax(sims[k]))].prompt)) for k in range(4)}
    assert {frozenset(p) for p in asked} == nearest


def test_per_language_embedders_and_thresholds():
    records = [rec("one", locale="de-DE"), rec("two", locale="de-AT"), rec("three"), rec("four")]
    fixed = {"one": [1, 0], "two": [0.9, 0.43589], "three": [1, 0], "four": [0.9, 0.43589]}  # cosine 0.9 in both
    used = {}

    def vectors(embedder, rows):
        used[tuple(r.prompt for r in rows)] = embedder.model if embedder else None
        return unit(*(fixed[r.prompt] for r in rows))

    settings = SemanticDedupConfig(threshold=0.85, review_from=None, languages={"de": {
        "embedder": {"backend": "sentence-transformers", "model": "/models/german"}, "threshold": 0.95}})
    result = dedup_by_language(records, settings, vectors)
    assert used == {("one", "two"): "/models/german", ("three", "four"): None}
    # 0.9: below German's 0.95, above the others' 0.85; a German prompt is never compared with an English one
    assert [r.prompt for r in result.kept][:2] == ["one", "two"] and len(result.kept) == 3
    assert [r.record.locale for r in result.rejected] == ["en-US"]
    assert set(result.notes["by_language"]) == {"de", "other"}


# -- the step in a run folder --------------------------------------------------------------------------

def test_the_step_writes_merges_with_provenance_to_rejected_and_band_pairs_to_flagged(tmp_path, embedder):
    config = RebuildConfig()
    run = RunFolder(tmp_path / "run")
    records = [rec(WIFE, best=True), rec(REWORDING), rec(BAND_REWORDING)]
    context = StepContext(config, run)
    context._embedder = embedder
    kept = run_steps([SemanticDedup(**config.curation.dedup.model_dump())], records, context)
    assert [r.prompt for r in kept] == [WIFE, BAND_REWORDING]
    (row,) = [json.loads(line) for line in (run.rejected / "prompt_dedup_semantic.jsonl").read_text().splitlines()]
    merged = Rejected.model_validate(row)
    assert (merged.id, merged.duplicate_of, merged.decided_by, merged.code) == \
        (records[1].id, records[0].id, "threshold", "near_duplicate")
    assert merged.similarity == pytest.approx(0.874, abs=0.002)
    (flag,) = [json.loads(line) for line in (run.path / "flagged" / "prompt_dedup_semantic.jsonl").read_text()
               .splitlines()]
    assert sorted(flag["ids"]) == sorted([records[0].id, records[2].id]) and flag["code"] == "near_duplicate_review"
    stage = run.manifest()["stages"]["prompt_dedup_semantic"]
    assert stage["counts"]["flagged"] == 1 and stage["counts"]["merged_by"] == {"threshold": 1}
    write_report(run, {"train": kept}, CurationAnalysis(prompt_nearest=np.array([0.874, 0.874, 0.774]),
                                                        dedup_threshold=DEFAULTS.threshold))
    report = (run.report / "report.md").read_text()
    assert "semantic dedup set aside 1 (1 by threshold)" in report
    assert "Pairs kept but flagged: **1** (near_duplicate_review 1)" in report
    assert f"| 0.774 | {WIFE} | {BAND_REWORDING} | near_duplicate_review |" in report


def test_the_step_asks_the_configured_judges(tmp_path, embedder, monkeypatch):
    import psychosafe.curation.registry as registry

    seen = {}

    def fake_judges(pairs, judges, out_dir, *, retries, progress):
        seen.update(judges=[j.model for j in judges], out_dir=out_dir, pairs=pairs)
        return [True] * len(pairs)

    monkeypatch.setattr(registry, "judge_same_request", fake_judges)
    config = RebuildConfig(judges=[{"backend": "openai", "model": "big-judge", "base_url": "http://127.0.0.1:1/v1"}])
    run = RunFolder(tmp_path / "run")
    records = [rec(WIFE, best=True), rec(BAND_REWORDING)]
    context = StepContext(config, run)
    context._embedder = embedder
    kept = run_steps([SemanticDedup(**config.curation.dedup.model_dump())], records, context)
    assert [r.prompt for r in kept] == [WIFE] and seen["judges"] == ["big-judge"]
    assert seen["out_dir"] == run.path / "curation" / "prompt_dedup_semantic"
    (row,) = [json.loads(line) for line in (run.rejected / "prompt_dedup_semantic.jsonl").read_text().splitlines()]
    assert row["decided_by"] == "judge" and "big-judge" in row["reason"]
    assert not (run.path / "flagged" / "prompt_dedup_semantic.jsonl").exists()


# -- settings ------------------------------------------------------------------------------------------

def test_bad_dedup_settings_fail_naming_the_field(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("curation:\n  dedup:\n    threshold: 0.8\n    review_from: 0.85\n")
    with pytest.raises(InputError, match=r"review_from \(0.85\) must be below threshold \(0.8\)"):
        load_rebuild_config(path)
    path.write_text("curation:\n  dedup:\n    languages:\n      German: {embedder: {}, threshold: 0.9}\n")
    with pytest.raises(InputError, match=r"language\(s\) \['German'\]: expected the language part of a locale"):
        load_rebuild_config(path)
    path.write_text("curation:\n  dedup:\n    nprobe: 0\n")
    with pytest.raises(InputError, match="nprobe"):
        load_rebuild_config(path)


def test_nprobe_grows_with_n_so_a_million_prompts_keep_their_recall():
    assert [ivf_lists(n) for n in (20_000, 100_000, 300_000, 1_000_000)] == \
        [(400, 8), (894, 8), (1549, 14), (2828, 26)]
    assert ivf_lists(1_000_000, 16) == (2828, 16) and ivf_lists(50, 8) == (6, 6)
    with pytest.raises(ValueError, match="nprobe must be a positive number of lists or 'auto', got 0"):
        ivf_lists(1000, 0)


@pytest.mark.slow  # starts two worker processes that each load the stack
def test_the_multi_process_pool_gives_the_same_vectors(monkeypatch):
    import psychosafe.curation.embed as embed

    monkeypatch.setattr(embed, "POOL_MIN_TEXTS", 4)
    texts = [WIFE, REWORDING, BAND_REWORDING, BOSS, "How do I get a gun license quickly?", "Where is the bus stop?"]
    one = CachedEmbedder(EmbedderConfig()).embed(texts)[0]
    started = []
    real_pool = embed.encoding_pool

    def counting_pool(model, config, texts):
        started.append(config.processes)
        return real_pool(model, config, texts)

    monkeypatch.setattr(embed, "encoding_pool", counting_pool)
    two = CachedEmbedder(EmbedderConfig(processes=2)).embed(texts)[0]
    assert started == [2] and two.shape == (6, 384)
    np.testing.assert_allclose(two, one, atol=1e-5)


def test_the_band_search_keeps_each_prompts_nearest_band_partners_only():
    # 60 topics of 50 prompts: every prompt has about 170 partners in the band, and only its 3 nearest come back
    rng = np.random.default_rng(0)
    topics = rng.normal(size=(60, 32)).astype(np.float32)
    vectors = topics[np.repeat(np.arange(60), 50)] + rng.normal(scale=0.35, size=(3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[1] = vectors[0]  # one pair above the threshold
    exact = similar_pairs(vectors, 0.99, method="exact", band=(0.3, 3))
    ivf = similar_pairs(vectors, 0.99, method="ivf", band=(0.3, 3), nprobe=4)
    sims = vectors @ vectors.T - 9 * np.eye(3000)
    for row in (0, 7, 1234):
        inside = np.flatnonzero((sims[row] >= 0.3) & (sims[row] < 0.99))
        nearest = set(inside[np.argsort(-sims[row, inside])[:3]].tolist())
        partners = set(exact.j[exact.i == row].tolist()) | set(exact.i[exact.j == row].tolist())
        assert nearest <= partners
    assert (0, 1) in set(zip(exact.i.tolist(), exact.j.tolist()))
    assert len(exact) <= 3000 * 3 + 1  # not the 259 000 band pairs there are
    found = set(zip(ivf.i.tolist(), ivf.j.tolist()))
    assert len(found & set(zip(exact.i.tolist(), exact.j.tolist()))) / len(exact) >= 0.99
