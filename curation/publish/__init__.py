"""Publishing a curated run to the Hugging Face Hub: the dataset card, the guards, the push."""

from .card import CardInputs, card_metadata, render_card
from .publish import (PublishBlocked, PublishConfig, PublishResult, build_publish_folder, load_publish_config,
                      publish_run, push_folder)

__all__ = ["CardInputs", "card_metadata", "render_card", "PublishBlocked", "PublishConfig", "PublishResult",
           "build_publish_folder", "load_publish_config", "publish_run", "push_folder"]
