"""Schemas: the taxonomy, rubric and resource directory (YAML, validated on load) and the record."""

from .conversations import ConversationError, Message
from .records import (
    RECORD_FEATURES,
    RECORD_FIELDS,
    UNKNOWN_LICENSE,
    Checks,
    ContactCheck,
    Generation,
    LabelAudit,
    Overlap,
    Record,
    Rejected,
    Review,
    Scores,
    Source,
    dataset_to_records,
    features_of,
    normalize_prompt,
    normalize_turns,
    record_id,
    record_to_row,
    records_to_dataset,
    row_to_record,
)
from .resources import Resource, ResourceDirectory, contact_key, default_resources, load_resources
from .rubric import Rubric, default_rubric, load_rubric
from .taxonomy import Taxonomy, default_taxonomy, load_taxonomy

__all__ = [
    "ConversationError", "Message",
    "RECORD_FEATURES", "RECORD_FIELDS", "Checks", "ContactCheck", "Generation", "LabelAudit", "Overlap",
    "UNKNOWN_LICENSE", "Record", "Rejected", "Review", "Scores", "Source", "dataset_to_records", "features_of",
    "normalize_prompt", "normalize_turns", "record_id", "records_to_dataset", "record_to_row", "row_to_record",
    "Resource", "ResourceDirectory", "contact_key", "default_resources", "load_resources",
    "Rubric", "default_rubric", "load_rubric", "Taxonomy", "default_taxonomy", "load_taxonomy",
]
