"""Publishing a curated run to the Hugging Face Hub. Modules in the order of the work: config
(configs/publish.yaml), guards (what may be published), card (the dataset card's numbers and tables; its words
are in card_template.md), folder (the repository as it will be pushed), hub (the push), publish (both)."""

from .card import CardInputs, card_metadata, render_card
from .config import PublishConfig, load_publish_config
from .folder import PublishResult, build_publish_folder
from .guards import PublishBlocked
from .hub import push_folder
from .publish import publish_run

__all__ = ["CardInputs", "card_metadata", "render_card", "PublishBlocked", "PublishConfig", "PublishResult",
           "build_publish_folder", "load_publish_config", "publish_run", "push_folder"]
