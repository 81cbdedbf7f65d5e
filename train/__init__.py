"""Training: LoRA fine-tuning with TRL (SFT, or DPO against the generic baseline) and PEFT on a curated run."""

from psychosafe.core.adapters import load_trained

from .config import DEFAULT_TRAIN_CONFIG, TrainConfig, load_train_config
from .data import TrainingData, assistant_message, load_curated, prompt_messages, training_data
from .model import count_lora_parameters, resolve_base_model
from .plan import TrainPlan, build_plan
from .run import TrainResult, train_run
from .tokens import conversation_tokens

__all__ = [
    "DEFAULT_TRAIN_CONFIG", "TrainConfig", "load_train_config", "TrainingData", "assistant_message", "load_curated",
    "prompt_messages", "training_data", "count_lora_parameters", "load_trained", "resolve_base_model", "TrainPlan",
    "build_plan", "TrainResult", "train_run", "conversation_tokens",
]
