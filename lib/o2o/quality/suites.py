"""Expectation suites as data: conf/expectations/<layer>.<table>.yaml read into checked, typed checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from o2o.config import Config
from o2o.errors import UsageError

SEVERITIES = ("critical", "warn")
CONFIG_REF = re.compile(r"^\$\{([a-z_]+)\.([a-z_]+)\}$")

# Checks Great Expectations cannot express on one DataFrame: derived columns or bands computed by us first.
# kind -> (required parameters, optional parameters)
CUSTOM_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "references": (("column", "table", "key"), ()),
    "fresh": (("column", "max_age_days"), ("expr",)),
    "volume_within_band_of_previous_run": ((), ("band",)),
    "quarantine_share_below": (("max_share",), ("column",)),
    "exactly_k_per_key": (("key", "k"), ()),
    "not_previously_purchased": (("column", "customer_column"), ()),
    "not_nan": (("column",), ()),
    "rows_satisfy": (("condition",), ("column",)),
}
RESERVED = ("expect", "severity", "name", "when", "hint", "description")


class SuiteError(UsageError, ValueError):
    """A suite file is missing, malformed or names an unknown expectation; the message names file, entry and fix."""


@dataclass(frozen=True)
class Check:
    """One declared expectation: what to check, how bad a failure is, and its parameters."""

    name: str
    expect: str
    severity: str
    column: str | None
    params: dict[str, Any] = field(default_factory=dict)
    hint: str | None = None
    description: str | None = None

    @property
    def is_custom(self) -> bool:
        """True for checks computed by o2o (derived columns, bands), False for plain GX expectations."""
        return self.expect in CUSTOM_KINDS


@dataclass(frozen=True)
class Suite:
    """A table's expectation suite: the checks that apply under this config, and the ones switched off."""

    table: str
    path: str
    checks: tuple[Check, ...]
    example_columns: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()


def suite_path(cfg: Config, table: str) -> Path:
    """conf/expectations/<layer>.<table>.yaml (cfg.quality.suites_dir)."""
    return Path(cfg.resolve(cfg.quality.suites_dir)) / f"{table}.yaml"


def has_suite(cfg: Config, table: str) -> bool:
    """True when a suite file exists for the table."""
    return suite_path(cfg, table).exists()


def load_suite(cfg: Config, table: str, is_known_expectation=lambda name: True) -> Suite:
    """Read and check a table's suite; `${section.key}` values are taken from the config."""
    path = suite_path(cfg, table)
    if not path.exists():
        raise SuiteError(
            f"{path}: no expectation suite for table '{table}'; create it (see conf/expectations/README.md)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise SuiteError(f"{path}: expected a mapping with 'table' and a list 'expectations'")
    if data.get("table") != table:
        raise SuiteError(
            f"{path}: says table '{data.get('table')}', but the file name says '{table}'; make them agree"
        )
    checks: list[Check] = []
    disabled: list[str] = []
    for index, entry in enumerate(data["expectations"]):
        check, enabled = _parse_check(cfg, path, index, entry, is_known_expectation)
        if any(c.name == check.name for c in checks) or check.name in disabled:
            raise SuiteError(
                f"{path}: expectation #{index + 1} repeats the name '{check.name}'; give it a distinct 'name'"
            )
        if enabled:
            checks.append(check)
        else:
            disabled.append(check.name)
    return Suite(
        table=table,
        path=str(path),
        checks=tuple(checks),
        example_columns=tuple(data.get("example_columns") or ()),
        disabled=tuple(disabled),
    )


def check_name(expect: str, params: dict[str, Any]) -> str:
    """Default name an operator uses with --accept-dq-failure: expect(column) or expect(col_a,col_b)."""
    columns = params.get("column") or params.get("column_list") or params.get("key")
    if isinstance(columns, (list, tuple)):
        columns = ",".join(columns)
    return f"{expect}({columns})" if columns else expect


def _parse_check(cfg: Config, path: Path, index: int, entry: Any, is_known_expectation) -> tuple[Check, bool]:
    where = f"{path}: expectation #{index + 1}"
    if not isinstance(entry, dict) or "expect" not in entry:
        raise SuiteError(f"{where}: must be a mapping with 'expect' and 'severity', got {entry!r}")
    resolved = {key: _resolve(cfg, value, f"{where} '{key}'") for key, value in entry.items()}
    expect = str(resolved["expect"])
    severity = resolved.get("severity")
    if severity not in SEVERITIES:
        raise SuiteError(
            f"{where} ({expect}): severity must be one of {', '.join(SEVERITIES)}, got {severity!r}"
        )
    params = {key: value for key, value in resolved.items() if key not in RESERVED}
    if expect in CUSTOM_KINDS:
        required, optional = CUSTOM_KINDS[expect]
        missing = [p for p in required if p not in params]
        unknown = sorted(set(params) - set(required) - set(optional))
        if missing or unknown:
            raise SuiteError(
                f"{where} ({expect}): "
                + (f"missing {', '.join(missing)}; " if missing else "")
                + (f"unknown {', '.join(unknown)}; " if unknown else "")
                + f"'{expect}' takes {', '.join(required + optional) or 'no parameters'}"
            )
    elif not is_known_expectation(expect):
        raise SuiteError(
            f"{where}: unknown expectation '{expect}'; use a Great Expectations 1.x expectation name without the "
            f"'expect_' prefix (e.g. column_values_to_not_be_null) or one of {', '.join(CUSTOM_KINDS)}"
        )
    if "row_condition" in params:
        # GX parses the condition with Spark itself; the gate's example rows apply the same expression.
        parser = params.setdefault("condition_parser", "spark")
        if parser != "spark" or not isinstance(params["row_condition"], str):
            raise SuiteError(
                f"{where} ({expect}): row_condition must be a Spark SQL predicate string with condition_parser "
                f"spark (the default), e.g. row_condition: \"channel <> 'pos'\"; got {params['row_condition']!r} "
                f"with condition_parser {parser!r}"
            )
    if "key" in params and isinstance(params["key"], str) and expect == "exactly_k_per_key":
        params["key"] = [params["key"]]
    check = Check(
        name=str(resolved.get("name") or check_name(expect, params)),
        expect=expect,
        severity=severity,
        column=params.get("column"),
        params=params,
        hint=resolved.get("hint"),
        description=resolved.get("description"),
    )
    return check, bool(resolved.get("when", True))


def _resolve(cfg: Config, value: Any, where: str) -> Any:
    """'${section.key}' -> that config value; lists and mappings are resolved item by item."""
    if isinstance(value, list):
        return [_resolve(cfg, item, where) for item in value]
    if isinstance(value, dict):
        return {key: _resolve(cfg, item, where) for key, item in value.items()}
    if isinstance(value, str):
        match = CONFIG_REF.match(value)
        if match:
            section, key = match.groups()
            if not hasattr(cfg, section) or not hasattr(getattr(cfg, section), key):
                raise SuiteError(
                    f"{where}: {value} names no config value; use ${{section.key}}, e.g. ${{quality.volume_band}}"
                )
            return getattr(getattr(cfg, section), key)
    return value
