"""Read a YAML file into a pydantic model; every failure names the file and the entry."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from psychosafe.errors import InputError, input_error_from_validation

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: str | Path) -> object:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(path, f"not valid YAML: {getattr(exc, 'problem', exc)}", line=line) from None


def load_model(path: str | Path, model: type[M]) -> M:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(path, f"expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise input_error_from_validation(path, exc, data) from None
