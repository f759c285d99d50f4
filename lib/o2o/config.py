"""Typed, frozen configuration: conf/base.yaml, then conf/<env>.yaml, then O2O__SECTION__KEY env vars."""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from o2o.errors import UsageError

ENV_PREFIX = "O2O__"
KNOWN_SCHEMES = ("file", "s3a", "s3", "abfss", "gs", "hdfs", "dbfs")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class ConfigError(UsageError, ValueError):
    """A configuration value is missing, unknown or malformed; the message names the key and file."""


@dataclass(frozen=True)
class Store:
    store_id: str
    city: str
    timezone: str


@dataclass(frozen=True)
class LakeConfig:
    root: str
    landing: str
    reports: str = ""
    checkpoints: str = ""


@dataclass(frozen=True)
class SparkConfig:
    master: str = "local[*]"
    app_name: str = "o2o-lakehouse"
    shuffle_partitions: int = 0
    ui_enabled: bool = False
    driver_memory: str = "2g"
    jar_cache: str = ".cache/spark-jars"
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FaultRates:
    malformed_line: float = 0.001
    missing_id: float = 0.001
    negative_price: float = 0.001
    redelivered_files: int = 1
    late_files: int = 1
    late_by_days: int = 2
    extra_column_from_day: int = 60


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int = 20000
    days: int = 90
    start_date: date = date(2026, 6, 1)
    seed: int = 42
    orders_per_customer_per_day: float = 0.045
    products: int = 800
    anonymous_visitors_share: float = 0.15
    faults: FaultRates = field(default_factory=FaultRates)
    campaign: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SilverConfig:
    pii_salt_env: str = "O2O_PII_SALT"
    dev_salt_allowed: bool = False
    default_country_code: str = "86"
    max_identity_iterations: int = 30
    stores: tuple[Store, ...] = ()


@dataclass(frozen=True)
class GoldConfig:
    lookback_days: int = 365
    segments_file: str = "conf/rfm_segments.yaml"
    campaigns_file: str = "conf/campaigns.yaml"
    effect_window_days: int = 14
    control_share: float = 0.2


@dataclass(frozen=True)
class QualityConfig:
    suites_dir: str = "conf/expectations"
    freshness_days: int = 3
    volume_band: float = 0.5
    max_quarantine_share: float = 0.02
    example_rows: int = 5
    data_docs: bool = True


@dataclass(frozen=True)
class RecoConfig:
    top_n: int = 10
    k: int = 10
    exclude_purchased: bool = True
    event_weights: dict = field(
        default_factory=lambda: {"purchase": 5.0, "cart": 3.0, "favourite": 2.0, "view": 1.0, "review": 4.0}
    )
    recency_half_life_days: float = 30.0
    test_days: int = 14
    validation_days: int = 14
    min_interactions: int = 3
    grid: dict = field(
        default_factory=lambda: {"rank": [16], "regParam": [1.0], "alpha": [2.0, 5.0], "maxIter": [10]}
    )
    seed: int = 7
    checkpoint_interval: int = 10


@dataclass(frozen=True)
class MaintenanceConfig:
    vacuum_retention_hours: int = 168
    zorder: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    env: str
    project_root: str
    lake: LakeConfig
    spark: SparkConfig = field(default_factory=SparkConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    silver: SilverConfig = field(default_factory=SilverConfig)
    gold: GoldConfig = field(default_factory=GoldConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    reco: RecoConfig = field(default_factory=RecoConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)

    def resolve(self, path: str) -> str:
        """A path from the config made absolute against the project root (URIs are kept as they are)."""
        return resolve_path(path, self.project_root)

    def store_timezones(self) -> dict[str, str]:
        """store_id -> IANA time zone, from silver.stores."""
        return {store.store_id: store.timezone for store in self.silver.stores}

    def replace(self, **sections: Any) -> Config:
        """A copy with whole sections or nested values replaced, e.g. replace(lake={'root': '/tmp/x'})."""
        changes = {}
        for name, value in sections.items():
            current = getattr(self, name)
            changes[name] = dataclasses.replace(current, **value) if isinstance(value, dict) else value
        return dataclasses.replace(self, **changes)


def resolve_path(path: str, root: str) -> str:
    """Absolute local path, or the URI unchanged."""
    if _SCHEME.match(path):
        return path
    candidate = Path(path)
    return str(candidate if candidate.is_absolute() else (Path(root) / candidate).resolve())


def default_conf_dir() -> Path:
    """$O2O_CONF_DIR, else ./conf, else the conf/ folder of the source checkout this package lives in."""
    if os.environ.get("O2O_CONF_DIR"):
        return Path(os.environ["O2O_CONF_DIR"])
    if (Path.cwd() / "conf" / "base.yaml").exists():
        return Path.cwd() / "conf"
    return Path(__file__).resolve().parents[2] / "conf"


def load_config(
    env: str | None = None, conf_dir: str | Path | None = None, overrides: dict | None = None
) -> Config:
    """Load conf/base.yaml, then conf/<env>.yaml, then O2O__SECTION__KEY env vars, then `overrides`."""
    conf_path = Path(conf_dir) if conf_dir else default_conf_dir()
    env = env or os.environ.get("O2O_ENV", "local")
    base_file = conf_path / "base.yaml"
    env_file = conf_path / f"{env}.yaml"
    if not base_file.exists():
        raise ConfigError(
            f"{base_file}: base config not found; set O2O_CONF_DIR or run from the project folder"
        )
    if not env_file.exists():
        known = sorted(p.stem for p in conf_path.glob("*.yaml") if p.stem != "base")
        raise ConfigError(f"{env_file}: no config for env '{env}'; known envs: {', '.join(known)}")

    merged: dict = {}
    sources: dict[str, str] = {}
    for source_file in (base_file, env_file):
        data = _read_yaml(source_file)
        _deep_merge(merged, data, sources, str(source_file), prefix="")
    _deep_merge(merged, _env_overrides(), sources, "environment (O2O__...)", prefix="")
    if overrides:
        _deep_merge(merged, overrides, sources, "overrides", prefix="")
    merged["env"] = env
    project_root = str(conf_path.resolve().parent)
    merged["project_root"] = project_root
    sources.setdefault("env", str(env_file))
    sources.setdefault("project_root", str(env_file))
    cfg = _build(Config, merged, sources, path="")
    _validate(cfg, sources)
    return cfg


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _env_overrides() -> dict:
    """O2O__LAKE__ROOT=/data -> {'lake': {'root': '/data'}}; values are parsed as YAML scalars."""
    result: dict = {}
    for name, raw in os.environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = result
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = yaml.safe_load(raw) if raw != "" else ""
    return result


def _deep_merge(target: dict, source: dict, sources: dict, origin: str, prefix: str) -> None:
    for key, value in source.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(target.get(key), dict) and not dotted.endswith(".extra"):
            _deep_merge(target[key], value, sources, origin, prefix=f"{dotted}.")
        else:
            target[key] = value
        sources[dotted] = origin


def _origin(sources: dict, dotted: str) -> str:
    while dotted:
        if dotted in sources:
            return sources[dotted]
        dotted = dotted.rpartition(".")[0]
    return "config"


def _build(cls: type, data: Any, sources: dict, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{_origin(sources, path)}: '{path}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise ConfigError(
            f"{_origin(sources, key)}: unknown key '{key}'; allowed in '{path or 'top level'}': {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, fld in known.items():
        key = f"{path}.{name}" if path else name
        if name not in data:
            if fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                raise ConfigError(
                    f"{_origin(sources, path) if path else 'config'}: missing required key '{key}'"
                )
            continue
        kwargs[name] = _coerce(hints[name], data[name], sources, key)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, sources: dict, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, sources, key)
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{_origin(sources, key)}: '{key}' must be a list")
        return tuple(_coerce(item_type, item, sources, f"{key}[{i}]") for i, item in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{_origin(sources, key)}: '{key}' must be a mapping")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{_origin(sources, key)}: '{key}' must be true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{_origin(sources, key)}: '{key}' must be a number, got {value!r}")
        if hint is int and not float(value).is_integer():
            raise ConfigError(f"{_origin(sources, key)}: '{key}' must be a whole number, got {value!r}")
        return hint(value)
    if hint is date:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError as exc:
            raise ConfigError(
                f"{_origin(sources, key)}: '{key}' must be a date YYYY-MM-DD, got {value!r}"
            ) from exc
    if hint is str:
        if value is None or isinstance(value, (dict, list)):
            raise ConfigError(f"{_origin(sources, key)}: '{key}' must be a text value, got {value!r}")
        return str(value)
    return value


def _validate(cfg: Config, sources: dict) -> None:
    for key in ("lake.root", "lake.landing", "lake.reports", "lake.checkpoints"):
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if key in ("lake.root", "lake.landing") and not value.strip():
            raise ConfigError(f"{_origin(sources, key)}: '{key}' must not be empty")
        if value and (any(ch.isspace() for ch in value) or value.strip() != value):
            raise ConfigError(f"{_origin(sources, key)}: '{key}' = {value!r} contains white space")
        match = _SCHEME.match(value)
        if match and match.group(1).lower() not in KNOWN_SCHEMES:
            raise ConfigError(
                f"{_origin(sources, key)}: '{key}' = {value!r} has an unsupported scheme "
                f"'{match.group(1)}'; use a local path or one of {', '.join(KNOWN_SCHEMES)}"
            )
    if not 0 <= cfg.gold.control_share < 1:
        raise ConfigError(f"{_origin(sources, 'gold.control_share')}: 'gold.control_share' must be in [0, 1)")
    seen = set()
    for store in cfg.silver.stores:
        if store.store_id in seen:
            raise ConfigError(
                f"{_origin(sources, 'silver.stores')}: store '{store.store_id}' is listed twice"
            )
        seen.add(store.store_id)
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(store.timezone)
        except Exception as exc:  # ZoneInfoNotFoundError or a malformed key
            raise ConfigError(
                f"{_origin(sources, 'silver.stores')}: store '{store.store_id}' has an unknown time zone "
                f"'{store.timezone}'; use an IANA name such as Asia/Shanghai"
            ) from exc
