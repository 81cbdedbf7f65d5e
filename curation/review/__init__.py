"""Human review in Argilla: push a run's records as a review queue, pull the answers back, merge them, and
measure agreement.

Modules in the order the data flows: config (configs/review.yaml), selection (the run's records and which are
queued), settings (the queue's fields, questions and metadata, derived from rubric.yaml, taxonomy.yaml and the
record), client (every argilla call), push, answers (what the queue holds, as plain data), merge, agreement (the
statistics) and figures (per criterion), report, pull, status.
"""

from .agreement import Agreement, aggregate, cohen_kappa, krippendorff_alpha
from .answers import Annotation, QueueRecord
from .client import ArgillaQueue
from .config import ReviewConfig, SelectionConfig, load_review_config
from .figures import agreement_figures
from .merge import MergeResult, merge_record, merge_reviews
from .pull import pull_review
from .push import push_review
from .selection import load_run_records, select_records
from .settings import build_settings
from .status import review_status

__all__ = ["Agreement", "aggregate", "cohen_kappa", "krippendorff_alpha", "Annotation", "QueueRecord",
           "ArgillaQueue", "ReviewConfig", "SelectionConfig", "load_review_config", "agreement_figures",
           "MergeResult", "merge_record", "merge_reviews", "pull_review", "push_review", "load_run_records",
           "select_records", "build_settings", "review_status"]
