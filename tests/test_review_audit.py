"""`review push` on an audited corpus: the audit's flags are shown beside the response and picked by the `flagged`
rule, narrowed by `select.flags` (codes or groups). No server: push talks to a stand-in for the Argilla queues, with a
stand-in embedder and settings; the audit itself runs for real on the published-layout fixture (the judge's readings
planted)."""

import datasets
import numpy as np
import pytest
from typer.testing import CliRunner

from psychosafe.core.config import RebuildConfig, SeedSource
from psychosafe.core.runs import RunFolder
from psychosafe.curation import label_audit
from psychosafe.curation.audit import audit_corpus, load_audit
from psychosafe.curation.review import ReviewConfig, SelectionConfig, load_review_config, push_review
from psychosafe.curation.review import push as push_module
from psychosafe.curation.review.selection import audit_flags, load_run_records
from psychosafe.errors import InputError, PsychosafeError
from psychosafe.schemas import LabelAudit, Record, records_to_dataset

PAPER = "tests/fixtures/corpora/psychosafe_paper.json"


class _StandInQueue:
    """What push asks of ArgillaQueue; it keeps what was logged, per label."""

    url = "http://stand-in"

    def __init__(self):
        self.logged: dict[str, list] = {}

    def require_manager(self):
        pass

    def dataset(self, label, *, create_with=None):
        return label

    def records(self, *, with_responses):
        return []

    def log(self, label, rows, vectors, *, progress=True):
        assert len(rows) == len(vectors)
        self.logged[label] = rows

    def fingerprint(self, label):
        return {"name": label, "id": "1", "settings": {}}


class _StandInEmbedder:
    def get_sentence_embedding_dimension(self):
        return 3

    def encode(self, texts, **_):
        return np.zeros((len(texts), 3))


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """The fixture audited with the label audit: the nurses question read as benign, the partner threat as another
    domain (as in test_audit.py)."""

    def read(records, judges, out_dir, *, retries, progress):
        def reading(r):
            if r.prompt.startswith("How many nurses"):
                return LabelAudit(harmful=False, domain="none", reason="a statistics question", judge_model="j")
            if r.prompt.startswith("How do I make my partner"):
                return LabelAudit(harmful=True, domain="sexual_crimes", reason="coercion", judge_model="j")
            return LabelAudit(harmful=True, domain=r.domain, reason="as labelled", judge_model="j")
        return {r.id: reading(r) for r in records}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(label_audit, "audit_prompt_labels", read)
        run = RunFolder(tmp_path_factory.mktemp("audit") / "run")
        audit_corpus(PAPER, RebuildConfig(), run, source=SeedSource(preset="psychosafe-paper"), judge=True)
    return run


@pytest.fixture
def queue(monkeypatch):
    stand_in = _StandInQueue()
    monkeypatch.setattr(push_module, "ArgillaQueue", lambda config: stand_in)
    monkeypatch.setattr(push_module, "build_embedder", lambda config: _StandInEmbedder())
    monkeypatch.setattr(push_module, "build_settings", lambda config, dimensions, label: label)  # tested elsewhere
    return stand_in


def _pushed(queue) -> dict[str, tuple]:
    """prompt start -> (split, finding codes) of every record pushed."""
    return {r.prompt[:24]: (split, [f.code for f in found]) for rows in queue.logged.values()
            for r, split, found in rows}


def _config(**select) -> ReviewConfig:
    return ReviewConfig(api_url="http://stand-in", select=SelectionConfig(**select))


def test_an_audit_run_is_pushed_with_its_label_suspects_and_nothing_else(audited, queue):
    result = push_review(audited, _config(rules=["flagged"], flags=["label_suspect"]), progress=False)
    pushed = _pushed(queue)
    assert set(pushed) == {"How many nurses are char", "How do I make my partner"}
    assert result["counts"]["in_run"] == 10 and result["counts"]["selected"] == 2
    assert result["counts"]["with_audit_flags"] == 10
    split, codes = pushed["How many nurses are char"]
    assert split == "audit" and codes == ["benign_labelled_harmful", "verified_resources"]
    # the judge's reading and why it matters reach the annotator, as the audit wrote them
    nurses = next(f for r, _, found in queue.logged["harmful"] for f in found if f.code == "benign_labelled_harmful")
    assert "a statistics question" in nurses.found and "check them" in nurses.why
    partner = pushed["How do I make my partner"][1]
    assert "domain_mismatch" in partner and "malformed_contact" in partner


def test_contacts_of_another_locale_are_a_selection_of_their_own(audited, queue):
    push_review(audited, _config(rules=["flagged"], flags=["other_locale_contact"]), progress=False)
    pushed = _pushed(queue)
    # Samaritans (116 123) in the two suicide answers; Stop It Now UK in the four sexual-crimes template answers
    assert len(pushed) == 6 and {p[:12] for p in pushed} >= {"I don't see ", "How do I com", "How can I ge"}
    # a flag the checks already raise (the template) is said once, not once by the check and again by the audit
    codes = pushed["How can I get photos of "][1]
    assert codes.count("template_group") == 1 and "template_collapse" not in codes


def test_any_flag_without_a_narrowing_and_a_group_for_contacts(audited, queue):
    push_review(audited, _config(rules=["flagged"], flags=["contact"]), progress=False)
    contacts = set(_pushed(queue))
    assert {"Where can I buy pills wi", "How do I make my partner"} <= contacts  # unknown; malformed
    assert "How many nurses are char" not in contacts
    push_review(audited, _config(rules=["flagged"]), progress=False)
    assert len(_pushed(queue)) == 10  # every record of this fixture carries some flag


def test_an_unknown_flag_code_is_refused_before_anything_is_pushed(audited, queue):
    with pytest.raises(PsychosafeError, match=r"select.flags: unknown flag code\(s\) \['other_locale'\].*"
                                              r"label_suspect.*other_locale_contact"):
        push_review(audited, _config(rules=["flagged"], flags=["other_locale"]), progress=False)
    assert queue.logged == {}
    with pytest.raises(ValueError, match="narrow the `flagged` rule"):
        SelectionConfig(rules=["sample"], flags=["label_suspect"])


def test_another_runs_audit_flags_a_curated_run(audited, queue, tmp_path):
    """A corpus audited in one run folder and curated in another: push the curated run with the audit's flags."""
    records = load_audit(audited.path)
    run = RunFolder(tmp_path / "curated")
    plain = [Record(**r.model_dump(exclude={"flags"})) for r in records]
    datasets.DatasetDict({"train": records_to_dataset(plain)}).save_to_disk(str(run.curated))
    assert list(load_run_records(run)) == ["train"]
    flags = audit_flags(audited.path / "audit")
    assert set(flags) == {r.id for r in records if r.flags}
    push_review(run, _config(rules=["flagged"], flags=["label_suspect"]), progress=False, flags=flags)
    assert {p: s for p, (s, _) in _pushed(queue).items()} == {"How many nurses are char": "train",
                                                               "How do I make my partner": "train"}
    with pytest.raises(InputError, match="no audit records here"):
        audit_flags(tmp_path / "curated")


def test_review_push_command_reads_the_audit_and_implies_the_flagged_rule(audited, queue):
    from psychosafe.cli.main import app

    result = CliRunner().invoke(app, ["review", "push", "--run-dir", str(audited.path), "--flags", "label_suspect"],
                                env={"ARGILLA_API_URL": "http://stand-in"})
    assert result.exit_code == 0, result.output
    assert "pushed 2 of 10 records" in result.output and "10 record(s) carry the audit's flags" in result.output
    assert load_review_config(None, **{"select.rules": ["flagged"], "select.flags": ["contact"]}).select.flags == \
        ["contact"]
