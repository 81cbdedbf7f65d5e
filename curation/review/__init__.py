"""Human review in Argilla: push a run's records as a review queue, pull the answers back, merge them, and
measure agreement."""

from .agreement import Agreement, aggregate, cohen_kappa, krippendorff_alpha
from .queue import (ArgillaQueue, ReviewConfig, agreement_figures, build_settings, load_review_config,
                    load_run_records, merge_reviews, pull_review, push_review, record_fields, record_metadata,
                    review_status, select_records)

__all__ = ["Agreement", "aggregate", "cohen_kappa", "krippendorff_alpha", "ArgillaQueue", "ReviewConfig",
           "agreement_figures", "build_settings", "load_review_config", "load_run_records", "merge_reviews",
           "pull_review", "push_review", "record_fields", "record_metadata", "review_status", "select_records"]
