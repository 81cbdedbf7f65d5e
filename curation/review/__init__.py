"""Human review in Argilla: push a run's records as a review queue, pull the answers back, merge them, and
measure agreement.

Modules in the order the data flows: config (configs/review.yaml), findings (what the checks found, shown beside
the response), selection (the run's records and which are queued), settings (each label's queue: fields,
questions, guidelines and metadata, derived from rubric.yaml, taxonomy.yaml and the record), client (every argilla
call), push, answers (what the queues hold, as plain data), merge, agreement (the statistics, pure functions) and
figures (per criterion and annotator), report, pull (which also decides where the judge is trusted:
curation.scores.JudgeTrust), status.
"""

from .agreement import (
    Agreement,
    AnnotatorAgreement,
    aggregate,
    alpha_agreement,
    cohen_kappa,
    exact_agreement,
    kappa_agreement,
    krippendorff_alpha,
    normalize_label,
    per_annotator,
)
from .answers import Annotation, QueueRecord
from .client import ArgillaQueue
from .config import ReviewConfig, SelectionConfig, TrustConfig, load_review_config
from .figures import CriterionAgreement, agreement_figures
from .findings import Finding, Flags, record_findings
from .merge import MergeResult, merge_record, merge_reviews
from .pull import pull_review
from .push import push_review
from .selection import load_run_records, select_records
from .settings import build_settings
from .status import review_status

__all__ = ["Agreement", "AnnotatorAgreement", "aggregate", "alpha_agreement", "cohen_kappa", "exact_agreement",
           "kappa_agreement", "krippendorff_alpha", "normalize_label", "per_annotator", "Annotation", "QueueRecord",
           "ArgillaQueue", "ReviewConfig", "SelectionConfig", "TrustConfig", "load_review_config",
           "CriterionAgreement", "agreement_figures", "Finding", "Flags", "record_findings",
           "MergeResult", "merge_record", "merge_reviews", "pull_review", "push_review", "load_run_records",
           "select_records", "build_settings", "review_status"]
