"""Errors meant for people: which file, which field, what was expected, what to do."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError


class PsychosafeError(Exception):
    """An error the CLI prints as a message, without a traceback."""


class InputError(PsychosafeError):
    """Bad input (config, schema, seed or dataset file): names the file, the place and the problem."""

    def __init__(self, file: str | Path, problem: str, *, where: str | None = None, line: int | None = None):
        self.file = str(file)
        self.where = where
        self.line = line
        self.problem = problem
        location = self.file + (f":{line}" if line is not None else "")
        super().__init__(f"{location}: {where}: {problem}" if where else f"{location}: {problem}")


def _loc_to_str(loc: tuple, data: object) -> str:
    """('domains', 2, 'categories') -> 'domains[2] (violence).categories', naming entries by id."""
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and "id" in node:
                out += f" ({node['id']})"
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def input_error_from_validation(file: str | Path, exc: ValidationError, data: object) -> InputError:
    """Turn a pydantic error into one readable InputError listing every problem."""
    problems = [f"{_loc_to_str(e['loc'], data)}: {e['msg']}" + _got(e) for e in exc.errors()]
    return InputError(file, "; ".join(problems))


def _got(error: dict) -> str:
    if error["type"] in ("missing",) or "input" not in error:
        return ""
    value = repr(error["input"])
    return f" (got {value[:60]})"
