"""Importing a corpus as it is (`curate` and `audit` share these options), and `psychosafe audit`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from pydantic import ValidationError

from psychosafe.core.config import RebuildConfig, SeedSource, with_overrides
from psychosafe.core.runs import DEFAULT_RUNS_DIR, RunFolder
from psychosafe.curation.audit import AUDIT_DIR, audit_corpus
from psychosafe.curation.curate import curation_config
from psychosafe.errors import InputError, input_error_from_validation
from psychosafe.schemas._yaml import read_yaml

from .options import console

PresetOpt = typer.Option(None, "--preset", help="a known layout: psychosafe-paper, xstest, sorry-bench, wildguardmix, "
                                                "strongreject, harmbench (configs/import_presets.yaml)")
MapOpt = typer.Option(None, "--map", help="FIELD=COLUMN: the record field a column of the file holds, e.g. "
                                          "prompt=text (repeat it)")
ValueOpt = typer.Option(None, "--value", help="FIELD:VALUE=OURS: a value map entry, e.g. 'domain:Drugs=substance'; "
                                              "OURS empty: out of scope (repeat it)")
DefaultOpt = typer.Option(None, "--default", help="FIELD=VALUE for rows without one, e.g. label=harmful (repeat it)")
LicenseOpt = typer.Option(None, "--license", help="the corpus's license (none: recorded as unknown, and the card "
                                                  "says so)")
LocaleOpt = typer.Option(None, "--locale", help="the locale of records without one (default en-US)")
MappingOpt = typer.Option(None, "--mapping", help="a YAML file holding all of the above (a seed source's fields)")


def _pairs(items: list[str] | None, option: str, sep: str = "=") -> dict[str, str]:
    out = {}
    for item in items or []:
        key, found, value = item.partition(sep)
        if not found or not key.strip():
            raise InputError(option, f"expected FIELD{sep}VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def import_source(preset: Optional[str], maps: Optional[List[str]], values: Optional[List[str]],
                  defaults: Optional[List[str]], license: Optional[str], locale: Optional[str],
                  mapping: Optional[Path]) -> SeedSource | None:
    """The seed source the command line describes (None: the rows are records already)."""
    value_maps: dict[str, dict[str, str | None]] = {}
    for field, entry in _pairs(values, "--value", ":").items():
        source_value, found, ours = entry.partition("=")
        if not found:
            raise InputError("--value", f"expected FIELD:VALUE=OURS, got {field}:{entry!r}")
        value_maps.setdefault(field, {})[source_value] = ours or None
    given = {"preset": preset, "columns": _pairs(maps, "--map"), "values": value_maps,
             "defaults": _pairs(defaults, "--default") | ({"locale": locale} if locale else {}), "license": license}
    given = {k: v for k, v in given.items() if v}
    if mapping is not None:
        data = read_yaml(mapping)
        if not isinstance(data, dict):
            raise InputError(mapping, "expected a mapping of a seed source's fields (columns, values, defaults, ...)")
        given = data | {k: (data.get(k) or {}) | v if isinstance(v, dict) else v for k, v in given.items()}
    if not given:
        return None
    try:
        return SeedSource(**given)
    except ValidationError as exc:
        raise input_error_from_validation(mapping or "the command line", exc, given) from None


def audit(input: Path = typer.Argument(..., help="the corpus: .json (array), .jsonl, .csv, .parquet, a saved dataset "
                                                 "folder or a run folder"),
          preset: Optional[str] = PresetOpt, map: Optional[List[str]] = MapOpt, value: Optional[List[str]] = ValueOpt,
          default: Optional[List[str]] = DefaultOpt, license: Optional[str] = LicenseOpt,
          locale: Optional[str] = LocaleOpt, mapping: Optional[Path] = MappingOpt,
          judge: bool = typer.Option(False, "--judge", help="also read every prompt with the judge (label audit)"),
          eval_set: Optional[List[str]] = typer.Option(
              None, "--eval-set", help="NAME=PATH: another evaluation set to look for (a local StrongREJECT or "
                                       "SORRY-Bench copy, or any file with a prompt column); XSTest and HarmBench "
                                       "are always looked for"),
          config: Optional[Path] = typer.Option(None, "--config", "-c", help="run config YAML (embedder, judges, "
                                                                             "thresholds; default: library defaults)"),
          run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="where to write (default: runs/audit-<time>)")
          ) -> None:
    """Every check on a corpus you already have, nothing dropped: audit/report.md, summary.json, records/ (flags)."""
    source = import_source(preset, map, value, default, license, locale, mapping)
    run = RunFolder(run_dir) if run_dir else RunFolder.new(DEFAULT_RUNS_DIR, "audit")
    cfg: RebuildConfig = curation_config(config, run)
    if eval_set:
        sets = [s.model_dump() for s in cfg.curation.contamination.sets] + list(eval_set)
        cfg = with_overrides(cfg, {"curation.contamination.sets": sets}, source="--eval-set")
    summary = audit_corpus(input, cfg, run, source=source, judge=judge, progress=True)
    flags = ", ".join(f"{k} {n}" for k, n in summary["flags"].items()) or "none"
    console.print(f"[green]done[/green]: {summary['records']} records, {summary['flagged_records']} flagged ({flags})\n"
                  f"report: {run.path / AUDIT_DIR / 'report.md'}\nflags: {run.path / AUDIT_DIR / 'records'}")
