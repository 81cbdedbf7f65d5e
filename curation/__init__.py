"""Curation: small steps over records, each returning what it kept, what it set aside and why."""

from .agreement import Agreement, aggregate, cohen_kappa, krippendorff_alpha
from .balance import balance_domains
from .checks import apply_checks, check_record, extract_contacts, refusal_markers
from .curate import curate
from .dedup import dedup_exact
from .report import write_report
from .review import (ArgillaQueue, ReviewConfig, agreement_figures, load_review_config, merge_reviews,
                     pull_review, push_review, review_status, select_records)
from .split import split_by_domain
from .steps import StepResult, reject

__all__ = ["Agreement", "aggregate", "cohen_kappa", "krippendorff_alpha", "ArgillaQueue", "ReviewConfig",
           "agreement_figures", "load_review_config", "merge_reviews", "pull_review", "push_review", "review_status",
           "select_records", "balance_domains", "apply_checks", "check_record", "extract_contacts", "refusal_markers", "curate",
           "dedup_exact", "write_report", "split_by_domain", "StepResult", "reject"]
