"""Synthetic channel feeds (online orders, POS, clickstreams, CRM, catalogue, reviews) with faults and their truth."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from multiprocessing import get_context
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from pyspark.sql.types import StringType

from o2o.config import Config
from o2o.contracts import LANDING

SHANGHAI = "Asia/Shanghai"
MANIFEST = "_manifest.json"
TRUTH_DIR = "_truth"
CAMPAIGN_TRUTH = "campaign.csv"  # per targeted member of the simulated campaign; only when one is configured
EXTRA_COLUMN = "wechat_unionid"
NOT_REGISTERED = 1 << 30
# The longest a record trails the day its order was created (late updates, pickups, returns, reviews).
MAX_LAG_DAYS = 16
MAX_DAILY_PURCHASE_P = 0.95
MAX_GENERATOR_PROCESSES = 4
# A process recomputes the creations of the MAX_LAG_DAYS before its first day: shorter pieces are not worth one.
MIN_DAYS_PER_PROCESS = 2 * MAX_LAG_DAYS

DAILY_FEEDS = (
    "online_orders",
    "app_clickstream",
    "mini_program_clickstream",
    "pos_sales",
    "crm_members",
    "reviews",
)
FILE_STEMS = {
    "online_orders": ("online_orders", "jsonl"),
    "app_clickstream": ("app_events", "jsonl"),
    "mini_program_clickstream": ("mp_log", "jsonl"),
    "pos_sales": ("pos", "csv"),
    "crm_members": ("crm_members", "csv"),
    "product_catalogue": ("catalogue", "csv"),
    "reviews": ("reviews", "jsonl"),
}
ONLINE_CHANNELS = np.array(["web", "app", "mini_program"], dtype=object)
POS = 3

CATEGORIES = np.array(
    [
        "Apparel",
        "Shoes",
        "Beauty",
        "Home",
        "Kitchen",
        "Electronics",
        "Toys",
        "Sports",
        "Books",
        "Snacks",
        "Baby",
        "Bags",
    ],
    dtype=object,
)
CATEGORY_SHARE = np.array([0.16, 0.09, 0.12, 0.1, 0.08, 0.07, 0.06, 0.08, 0.05, 0.09, 0.05, 0.05])
CATEGORY_PRICE = np.array([199, 399, 159, 129, 99, 899, 149, 259, 59, 39, 169, 329], dtype=float)
ADJECTIVES = np.array(
    ["Classic", "Urban", "Soft", "Light", "Pro", "Daily", "Premium", "Eco", "Mini", "Smart"], dtype=object
)
BRANDS = np.array(
    ["Huali", "Yunfeng", "Bluebird", "Mingdu", "Lotus", "Qingshan", "Northstar", "Jade", "Pandaa", "Suzhu", "Tianma",
     "Redleaf", "Harbor", "Kirin", "Silkroad", "Moonlit", "Bamboo", "Zenith", "Orchid", "Lumen"],
    dtype=object,
)  # fmt: skip
OTHER_CITIES = ("Hangzhou", "Shenzhen", "Wuhan", "Nanjing", "Xi'an")
FAMILY = np.array(
    ["wang", "li", "zhang", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun"], dtype=object
)
GIVEN = np.array(
    ["wei", "fang", "na", "min", "jing", "lei", "yang", "jie", "tao", "ying", "hui", "qiang"], dtype=object
)
EMAIL_DOMAINS = np.array(
    ["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com"], dtype=object
)
REGISTER_CHANNELS = np.array(["pos", "app", "mini_program", "web"], dtype=object)
APP_VERSIONS = np.array(["5.8.2", "5.9.0", "6.0.1", "6.1.0"], dtype=object)
MP_SCENES = np.array([1001, 1007, 1011, 1047, 1089])
REVIEW_TEXT = np.array(
    ["Very disappointed, would not buy again", "Below expectations", "It is okay for the price", "Good quality, as described",
     "Excellent, love it"],
    dtype=object,
)  # fmt: skip
# Share of the day's online orders per hour (Shanghai time) and of store sales per opening hour (local time).
ONLINE_HOURS = np.array(
    [
        1,
        0.6,
        0.3,
        0.2,
        0.2,
        0.3,
        0.6,
        1.2,
        2,
        2.5,
        3,
        3.2,
        3.5,
        3,
        2.8,
        2.8,
        3,
        3.2,
        3.5,
        4.2,
        5,
        5.2,
        4.2,
        2.5,
    ]
)
STORE_HOURS = np.array([1, 1.5, 2, 2, 1.5, 1.5, 1.8, 2, 2.5, 2.5, 2, 1.2])  # 10:00 .. 21:59
WEEKDAY_FACTOR = np.array([0.92, 0.9, 0.95, 1.0, 1.08, 1.15, 1.0])
FESTIVALS = {(6, 18): 1.8, (11, 11): 2.5, (12, 12): 1.5}
ALPHABET64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype="S1")
HEX = np.frombuffer(b"0123456789abcdef", dtype="S1")


# ---------------------------------------------------------------- small helpers


def _rng(seed: int, day: int, stream: str) -> np.random.Generator:
    """The random stream of one (seed, day, feed); the same triple always gives the same numbers."""
    return np.random.default_rng(np.random.SeedSequence([seed, day + 1_000_000, zlib.crc32(stream.encode())]))


def _text(values) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=object), dtype=object)


def _int_text(values, width: int = 0) -> pd.Series:
    text = pd.Series(np.asarray(values, dtype=np.int64)).astype(str)
    return text.str.zfill(width) if width else text


def _random_codes(rng: np.random.Generator, n: int, length: int, alphabet: np.ndarray) -> np.ndarray:
    """n random strings of `length` characters from `alphabet`."""
    picks = alphabet[rng.integers(0, len(alphabet), size=(n, length))]
    return np.ascontiguousarray(picks).view(f"S{length}").ravel().astype(str).astype(object)


def _unique_numbers(rng: np.random.Generator, n: int, space: int) -> np.ndarray:
    return rng.choice(space, size=n, replace=False)


def _money(cents) -> pd.Series:
    """Cents as a decimal text with two places ('-12.05')."""
    cents = np.asarray(cents, dtype=np.int64)
    magnitude = np.abs(cents)
    sign = _text(np.where(cents < 0, "-", ""))
    return sign + _int_text(magnitude // 100) + "." + _int_text(magnitude % 100, 2)


def _day_text(start: np.datetime64, days) -> pd.Series:
    return _text(np.datetime_as_string(start + np.asarray(days, dtype="timedelta64[D]"), unit="D"))


def _iso(local: np.ndarray, offset: str) -> pd.Series:
    return _text(np.datetime_as_string(local.astype("datetime64[s]"), unit="s")) + offset


def _sample_seconds(rng: np.random.Generator, hours: np.ndarray, n: int, first_hour: int = 0) -> np.ndarray:
    """Seconds after midnight, hour drawn from the weights, uniform within the hour."""
    hour = rng.choice(len(hours), size=n, p=hours / hours.sum()) + first_hour
    return hour * 3600 + rng.integers(0, 3600, size=n)


def _phone_text(digits: pd.Series, style: np.ndarray) -> pd.Series:
    """An 11-digit mobile written the way people type it: 0 plain, 1 dashes, 2 '+86 138 1234 5678', 3 '0086...',
    4 '86...', 5 spaced, 6 '+86...'."""
    head, mid, tail = digits.str[:3], digits.str[3:7], digits.str[7:]
    variants = [
        digits,
        head + "-" + mid + "-" + tail,
        "+86 " + head + " " + mid + " " + tail,
        "0086" + digits,
        "86" + digits,
        head + " " + mid + " " + tail,
        "+86" + digits,
    ]
    return _text(
        np.select([style == k for k in range(len(variants))], [v.to_numpy(object) for v in variants], None)
    )


def _pick_style(rng: np.random.Generator, n: int, weights) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return rng.choice(len(weights), size=n, p=weights / weights.sum())


def _objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain object arrays: the generator reads them back as numpy many times a day."""
    text = [
        c for c in frame.columns if pd.api.types.is_string_dtype(frame[c].dtype) and frame[c].dtype != object
    ]
    return frame.astype(dict.fromkeys(text, object)) if text else frame


def _json_lines(feed: str, values: dict[str, pd.Series]) -> pd.Series:
    """One JSON object per row, keys in the landing contract's order; text columns quoted, others pre-rendered."""
    fields = LANDING[feed].fields
    if [f.name for f in fields] != list(values):
        raise ValueError(f"{feed}: columns {list(values)} differ from contracts.LANDING")
    parts = []
    for position, fld in enumerate(fields):
        value = values[fld.name]
        rendered = ('"' + value + '"') if isinstance(fld.dataType, StringType) else value
        parts.append(
            ("{" if position == 0 else ",") + f'"{fld.name}":' + rendered.where(value.notna(), "null")
        )
    line = parts[0]
    for part in parts[1:]:
        line = line + part
    return line + "}"


def _csv_lines(feed: str, values: dict[str, pd.Series]) -> pd.Series:
    """CSV rows in the landing contract's column order; null is an empty field."""
    names = [f.name for f in LANDING[feed].fields]
    if names != list(values):
        raise ValueError(f"{feed}: columns {list(values)} differ from contracts.LANDING")
    line = values[names[0]].fillna("")
    for name in names[1:]:
        line = line + "," + values[name].fillna("")
    return line


# ---------------------------------------------------------------- the world: persons, devices, products, plans


@dataclass
class _World:
    seed: int
    start: date
    horizon: int
    rate: float
    faults: object
    stores: pd.DataFrame  # store_id, city, timezone
    persons: pd.DataFrame
    devices: pd.DataFrame  # device_id, person (-1 = anonymous visitor), app_version
    first_device: np.ndarray
    device_count: np.ndarray
    products: pd.DataFrame  # sku, product_name, category, brand, list_cents, quality, launched_at
    category_order: np.ndarray
    category_cum: np.ndarray
    global_cum: np.ndarray
    favourites: np.ndarray
    channel_cum: np.ndarray
    unknown_skus: list[str]
    campaign: dict | None
    treated: np.ndarray
    campaign_truth: pd.DataFrame | None = None  # per targeted member: control or not, P(purchase in window)
    late_plan: list[tuple[str, str, int]] = field(default_factory=list)  # (feed, file name, business day)
    resend_plan: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def start64(self) -> np.datetime64:
        return np.datetime64(self.start, "D")

    def day_factor(self, day: int) -> float:
        when = self.start + timedelta(days=day)
        return float(WEEKDAY_FACTOR[when.weekday()] * FESTIVALS.get((when.month, when.day), 1.0))

    def purchase_probability(self, day: int, with_campaign: bool = True) -> np.ndarray:
        base = self.persons["base_rate"].to_numpy() * self.day_factor(day)
        if with_campaign and self.campaign:
            start, window = self.campaign["start_day"], self.campaign["window_days"]
            if start <= day < start + window:
                base = np.where(self.treated, base * (1.0 + self.campaign["lift"]), base)
        return np.minimum(base, MAX_DAILY_PURCHASE_P)

    def sample_products(self, rng: np.random.Generator, person: np.ndarray) -> np.ndarray:
        """Product index per draw: the person's favourites, their preferred categories, or the whole range by popularity."""
        n = len(person)
        mode = rng.random(n)
        fav = rng.integers(0, self.favourites.shape[1], size=n)
        pick_second = rng.random(n) < 0.4
        within = rng.random(n)
        anywhere = rng.random(n)
        known = person >= 0
        safe = np.where(known, person, 0)
        prefs = self.persons[["pref_1", "pref_2"]].to_numpy()[safe]
        category = np.where(pick_second, prefs[:, 1], prefs[:, 0])
        by_category = self.category_order[
            np.minimum(
                np.searchsorted(self.category_cum, category + within, side="right"),
                len(self.category_order) - 1,
            )
        ]
        by_popularity = np.minimum(
            np.searchsorted(self.global_cum, anywhere, side="right"), len(self.global_cum) - 1
        )
        return np.where(
            known & (mode < 0.45),
            self.favourites[safe, fav],
            np.where(known & (mode < 0.8), by_category, by_popularity),
        )


def _build_world(cfg: Config, customers: int, seed: int, start: date) -> _World:
    gen = cfg.generator
    rng = _rng(seed, -1, "world")
    if not cfg.silver.stores:
        raise ValueError(
            "silver.stores in conf/base.yaml is empty; the generator needs at least one store for POS sales"
        )
    stores = pd.DataFrame(
        [(s.store_id, s.city, s.timezone) for s in cfg.silver.stores],
        columns=["store_id", "city", "timezone"],
    )
    n = int(customers)

    # products: Zipf-like popularity, a category and brand, a list price, a hidden quality that drives ratings
    n_products = int(gen.products)
    category = rng.choice(len(CATEGORIES), size=n_products, p=CATEGORY_SHARE)
    rank = rng.permutation(n_products)
    weight = 1.0 / np.power(rank + 1.0, 1.05)
    list_cents = np.round(CATEGORY_PRICE[category] * rng.lognormal(0.0, 0.45, n_products) * 100).astype(
        np.int64
    )
    list_cents = (list_cents // 100) * 100 + np.where(rng.random(n_products) < 0.6, 99, 0)
    sku_numbers = _unique_numbers(rng, n_products, 900_000) + 100_000
    products = pd.DataFrame(
        {
            "sku": ("SK" + _int_text(sku_numbers)).to_numpy(object),
            "category": CATEGORIES[category],
            "brand": BRANDS[rng.integers(0, len(BRANDS), n_products)],
            "list_cents": list_cents,
            "quality": np.clip(rng.normal(4.0, 0.55, n_products), 1.5, 4.9),
            "launched_at": _day_text(np.datetime64(start, "D"), -rng.integers(20, 1500, n_products)).to_numpy(
                object
            ),
            "category_code": category,
        }
    )
    products["product_name"] = (
        _text(products["brand"])
        + " "
        + _text(ADJECTIVES[rng.integers(0, len(ADJECTIVES), n_products)])
        + " "
        + _text(products["category"])
        + " "
        + _int_text(rng.integers(100, 1000, n_products))
    ).to_numpy(object)
    order = np.argsort(category, kind="stable")
    sorted_category = category[order]
    sorted_weight = weight[order]
    totals = np.bincount(sorted_category, weights=sorted_weight, minlength=len(CATEGORIES))
    running = np.cumsum(sorted_weight)
    before = np.concatenate([[0.0], np.cumsum(totals)])[sorted_category]
    category_cum = sorted_category + (running - before) / totals[sorted_category]
    global_cum = np.cumsum(weight) / weight.sum()
    by_popularity = np.argsort(rank)
    unknown_idx = np.sort(
        rng.choice(
            by_popularity[n_products // 8 : max(n_products // 8 + 1, n_products // 2)],
            size=min(5, n_products // 20 or 1),
            replace=False,
        )
    )
    unknown_skus = sorted(products["sku"].to_numpy()[unknown_idx].tolist())

    # persons: a city (most near a store), one unique mobile each, most an email, ~60% CRM members
    cities = list(dict.fromkeys(stores["city"].tolist())) + [
        c for c in OTHER_CITIES if c not in set(stores["city"])
    ]
    domestic = set(stores.loc[stores["timezone"].isin([SHANGHAI]), "city"])
    city_weight = np.array(
        [1.6 if c in domestic else 0.45 if c in set(stores["city"]) else 0.5 for c in cities]
    )
    city = np.array(cities, dtype=object)[rng.choice(len(cities), size=n, p=city_weight / city_weight.sum())]
    store_of_city = dict(zip(stores["city"], range(len(stores)), strict=False))
    home_store = pd.Series(city).map(store_of_city).fillna(-1).astype(int).to_numpy()
    phone_numbers = _unique_numbers(rng, 2 * n, 5 * 10**9)
    second_digit = np.array(["3", "5", "7", "8", "9"], dtype=object)
    phone_all = (
        "1" + _text(second_digit[phone_numbers // 10**9]) + _int_text(phone_numbers % 10**9, 9)
    ).to_numpy(object)
    phone, spare_phone = phone_all[:n], phone_all[n:]
    has_email = rng.random(n) < 0.85
    email = (
        _text(GIVEN[rng.integers(0, len(GIVEN), n)])
        + "."
        + _text(FAMILY[rng.integers(0, len(FAMILY), n)])
        + _int_text(np.arange(n) + 1)
        + "@"
        + _text(EMAIL_DOMAINS[rng.integers(0, len(EMAIL_DOMAINS), n)])
    ).to_numpy(object)
    email = np.where(has_email, email, None)
    is_member = rng.random(n) < 0.6
    member_width = max(7, len(str(20 * n)))
    member_id = np.where(
        is_member,
        ("M" + _int_text(_unique_numbers(rng, n, 10**member_width), member_width)).to_numpy(object),
        None,
    )
    preexisting = rng.random(n) < 0.65
    register_day = np.where(
        preexisting, -rng.integers(1, 1500, n), np.floor(rng.exponential(45.0, n)).astype(np.int64)
    )
    register_day = np.where(is_member, register_day, NOT_REGISTERED)
    register_channel = REGISTER_CHANNELS[rng.choice(4, size=n, p=[0.5, 0.2, 0.2, 0.1])]
    has_account = rng.random(n) < 0.75
    uses_app = has_account & (rng.random(n) < 0.6)
    has_openid = rng.random(n) < 0.5
    shops_in_store = (home_store >= 0) & (rng.random(n) < 0.7)
    nothing = ~(has_account | has_openid | shops_in_store)
    has_account |= nothing
    account_width = max(6, len(str(10 * n)))
    account_id = np.where(
        has_account,
        ("A" + _int_text(_unique_numbers(rng, n, 10**account_width), account_width)).to_numpy(object),
        None,
    )
    openid = np.where(has_openid, "oX" + _random_codes(rng, n, 26, ALPHABET64), None)
    available = np.column_stack([has_account, uses_app, has_openid, shops_in_store]).astype(float)
    channel_weight = rng.dirichlet([1.2, 1.5, 1.2, 1.6], size=n) * available
    channel_cum = np.cumsum(channel_weight / channel_weight.sum(axis=1, keepdims=True), axis=1)
    channel_cum[:, -1] = 1.0
    # ~5% of persons type another phone online: their online identity meets their CRM record only through email
    eligible = is_member & has_email & (has_account | has_openid)
    alt_share = min(1.0, 0.05 * n / max(1, eligible.sum()))
    alt_phone = eligible & (rng.random(n) < alt_share)
    online_phone = np.where(alt_phone, spare_phone, phone)
    pref_1 = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_SHARE)
    pref_2 = rng.choice(len(CATEGORIES), size=n, p=CATEGORY_SHARE)
    person_width = max(6, len(str(n)))
    persons = pd.DataFrame(
        {
            "person_id": ("P" + _int_text(np.arange(1, n + 1), person_width)).to_numpy(object),
            "city": city,
            "home_store": home_store,
            "phone": phone,
            "online_phone": online_phone,
            "alt_phone": alt_phone,
            "email": email,
            "member_id": member_id,
            "register_day": register_day,
            "register_channel": register_channel,
            "account_id": account_id,
            "uses_app": uses_app,
            "openid": openid,
            "base_rate": float(gen.orders_per_customer_per_day) * rng.gamma(1.3, 1 / 1.3, n),
            "pref_1": pref_1,
            "pref_2": pref_2,
        }
    )

    # devices: one or two per app user, plus anonymous visitors who never log in
    device_count = np.where(uses_app, 1 + (rng.random(n) < 0.25), 0)
    first_device = np.concatenate([[0], np.cumsum(device_count)[:-1]])
    n_anonymous = int(round(float(gen.anonymous_visitors_share) * n))
    device_person = np.concatenate([np.repeat(np.arange(n), device_count), np.full(n_anonymous, -1)])
    devices = pd.DataFrame(
        {
            "device_id": "d" + _random_codes(rng, len(device_person), 16, HEX),
            "person": device_person,
            "app_version": APP_VERSIONS[rng.integers(0, len(APP_VERSIONS), len(device_person))],
        }
    )

    persons, products, devices = _objects(persons), _objects(products), _objects(devices)
    world = _World(
        seed=seed,
        start=start,
        horizon=int(gen.days),
        rate=float(gen.orders_per_customer_per_day),
        faults=gen.faults,
        stores=stores,
        persons=persons,
        devices=devices,
        first_device=first_device,
        device_count=device_count,
        products=products,
        category_order=order,
        category_cum=category_cum,
        global_cum=global_cum,
        favourites=np.zeros((n, 1), dtype=np.int64),
        channel_cum=channel_cum,
        unknown_skus=unknown_skus,
        campaign=None,
        treated=np.zeros(n, dtype=bool),
    )
    favourite_owner = np.repeat(np.arange(n), 12)
    world.favourites = world.sample_products(_rng(seed, -1, "favourites"), favourite_owner).reshape(n, 12)
    _plan_campaign(world, cfg)
    _plan_files(world, cfg)
    return world


def control_group(campaign_id: str, member_id: str, control_share: float) -> bool:
    """True when a member is held out of a campaign; gold applies the very same rule to member_id."""
    bucket = int(hashlib.sha256(f"{campaign_id}|{member_id}".encode()).hexdigest()[:8], 16) / 2**32
    return bucket < control_share


def _plan_campaign(world: _World, cfg: Config) -> None:
    spec = dict(cfg.generator.campaign or {})
    if not spec:
        return
    campaign = {
        "campaign_id": str(spec.get("campaign_id", "C001")),
        "start_day": int(spec.get("start_day", 30)),
        "lift": float(spec.get("lift", 0.0)),
        "window_days": int(spec.get("window_days", cfg.gold.effect_window_days)),
        "control_share": float(spec.get("control_share", cfg.gold.control_share)),
    }
    persons = world.persons
    target = persons["member_id"].notna().to_numpy() & (
        persons["register_day"].to_numpy() < campaign["start_day"]
    )
    # one hash per targeted member, once per world: hashlib has no vectorised form
    control = np.array(
        [
            control_group(campaign["campaign_id"], member, campaign["control_share"])
            for member in persons["member_id"].to_numpy()[target]
        ],
        dtype=bool,
    )
    treated = target.copy()
    treated[np.flatnonzero(target)[control]] = False
    world.campaign = campaign
    world.treated = treated
    days = range(campaign["start_day"], campaign["start_day"] + campaign["window_days"])
    none_without = np.ones(len(persons))
    none_with = np.ones(len(persons))
    for day in days:
        none_without *= 1 - world.purchase_probability(day, with_campaign=False)
        none_with *= 1 - world.purchase_probability(day, with_campaign=True)
    effect = (1 - none_with) - (1 - none_without)
    world.campaign_truth = pd.DataFrame(
        {
            "member_id": persons["member_id"].to_numpy()[target],
            "person_id": persons["person_id"].to_numpy()[target],
            "is_control": control,
            "p_purchase_without_lift": (1 - none_without)[target].round(6),
            "p_purchase_with_lift": (1 - none_with)[target].round(6),
        }
    )
    world.campaign = {
        **campaign,
        "target_members": int(target.sum()),
        "treated_members": int(treated.sum()),
        "control_members": int(control.sum()),
        "window_dates": [
            str(world.start + timedelta(days=campaign["start_day"])),
            str(world.start + timedelta(days=campaign["start_day"] + campaign["window_days"] - 1)),
        ],
        "p_purchase_in_window_treated_without_lift": round(float((1 - none_without)[treated].mean()), 6)
        if treated.any()
        else 0.0,
        "true_effect": round(float(effect[treated].mean()), 6) if treated.any() else 0.0,
    }


def _plan_files(world: _World, cfg: Config) -> None:
    """Which files arrive late or twice, planned over the configured horizon (generator.days), fixed by the seed."""
    faults = cfg.generator.faults
    rng = _rng(world.seed, -1, "file-plan")
    horizon = max(1, int(cfg.generator.days))
    taken: set[tuple[str, str]] = set()

    def pick(last_day: int) -> tuple[str, str, int]:
        for _attempt in range(1000):
            feed = DAILY_FEEDS[rng.integers(0, len(DAILY_FEEDS))]
            day = int(rng.integers(0, max(1, last_day)))
            store = world.stores["store_id"].iloc[int(rng.integers(0, len(world.stores)))]
            name = _file_name(feed, world.start + timedelta(days=day), store)
            if (feed, name) not in taken:
                taken.add((feed, name))
                return feed, name, day
        raise ValueError("generator.faults: more late/redelivered files than days x feeds can hold")

    world.late_plan = [pick(horizon - int(faults.late_by_days)) for _ in range(int(faults.late_files))]
    world.resend_plan = [pick(horizon - 1) for _ in range(int(faults.redelivered_files))]


def _file_name(feed: str, day: date, store: str | None = None) -> str:
    stem, ext = FILE_STEMS[feed]
    if feed == "pos_sales":
        return f"{stem}_{store}_{day.isoformat()}.{ext}"
    return f"{stem}_{day.isoformat()}.{ext}"


# ---------------------------------------------------------------- one creation day: orders, POS sales, reviews


@dataclass
class _Creations:
    online_orders: pd.DataFrame  # one row per order
    online_lines: pd.DataFrame  # order_id, line_no, sku, quantity, cents
    online_records: pd.DataFrame  # order_id, status, updated (Shanghai local), file_day
    pos_rows: pd.DataFrame
    reviews: pd.DataFrame


def _creations(world: _World, day: int) -> _Creations:
    """Everything that starts on `day`, with the later days its records land on (updates, pickups, returns, reviews)."""
    rng = _rng(world.seed, day, "purchases")
    persons = world.persons
    stores = world.stores
    buyers = np.flatnonzero(rng.random(len(persons)) < world.purchase_probability(day))
    channel = (rng.random(len(buyers))[:, None] >= world.channel_cum[buyers]).sum(axis=1)
    channel = np.minimum(channel, POS)
    walk_ins = rng.poisson(max(0.5, len(persons) / 10000.0), size=len(stores))
    buyer = np.concatenate([buyers, np.full(walk_ins.sum(), -1)])
    channel = np.concatenate([channel, np.full(walk_ins.sum(), POS)])
    store = np.concatenate(
        [persons["home_store"].to_numpy()[buyers], np.repeat(np.arange(len(stores)), walk_ins)]
    )  # -1 for online buyers without a store nearby
    n_baskets = len(buyer)
    n_items = 1 + rng.binomial(4, 0.3, size=n_baskets)
    basket_of_line = np.repeat(np.arange(n_baskets), n_items)
    product = world.sample_products(rng, buyer[basket_of_line])
    quantity = rng.choice([1, 2, 3, 4], size=len(product), p=[0.75, 0.17, 0.05, 0.03])
    discount = rng.choice([1.0, 0.9, 0.8], size=len(product), p=[0.8, 0.15, 0.05])
    cents = np.round(world.products["list_cents"].to_numpy()[product] * discount).astype(np.int64)
    lines = pd.DataFrame({"basket": basket_of_line, "product": product, "quantity": quantity, "cents": cents})
    lines = lines.drop_duplicates(["basket", "product"]).reset_index(drop=True)
    lines["line_no"] = lines.groupby("basket").cumcount() + 1
    lines["sku"] = world.products["sku"].to_numpy()[lines["product"].to_numpy()]

    online = np.flatnonzero(channel < POS)
    in_store = np.flatnonzero(channel == POS)
    online_orders, online_lines, records, pickup_rows, reviews = _online_orders(
        world, day, rng, online, buyer, channel, store, lines
    )
    pos_rows = _pos_sales(world, day, rng, in_store, buyer, store, lines, pickup_rows)
    return _Creations(*(_objects(f) for f in (online_orders, online_lines, records, pos_rows, reviews)))


def _online_orders(
    world: _World,
    day: int,
    rng: np.random.Generator,
    online: np.ndarray,
    buyer: np.ndarray,
    channel: np.ndarray,
    store: np.ndarray,
    lines: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Online orders of the day: orders, their lines, every status record, the POS rows of pick-ups, and reviews."""
    persons = world.persons
    stores = world.stores
    start64 = world.start64
    n = len(online)
    person = buyer[online]
    seconds = _sample_seconds(rng, ONLINE_HOURS, n)
    order = np.lexsort((person, seconds))
    online, person, seconds = online[order], person[order], seconds[order]
    date_text = (world.start + timedelta(days=day)).strftime("%Y%m%d")
    order_id = ("O" + date_text + _int_text(np.arange(1, n + 1), 6)).to_numpy(object)
    chan = channel[online]
    customer_id = np.where(
        chan == 2, persons["openid"].to_numpy()[person], persons["account_id"].to_numpy()[person]
    )
    phone = _phone_text(
        _text(persons["online_phone"].to_numpy()[person]), _pick_style(rng, n, [35, 15, 15, 8, 7, 10, 10])
    )
    email_raw = _text(persons["email"].to_numpy()[person])
    email_style = _pick_style(rng, n, [80, 10, 10])
    email = _text(
        np.select(
            [email_style == 1, email_style == 2],
            [email_raw.str.upper().to_numpy(object), (" " + email_raw + " ").to_numpy(object)],
            email_raw.to_numpy(object),
        )
    )
    email = email.where((rng.random(n) < 0.85) | persons["alt_phone"].to_numpy()[person], None)
    home = store[online]
    pickup = (home >= 0) & (rng.random(n) < 0.2)
    cancelled = rng.random(n) < 0.05
    order_local = start64 + np.timedelta64(day, "D") + seconds.astype("timedelta64[s]")

    basket_lines = lines[lines["basket"].isin(online)]
    position = pd.Series(np.arange(n), index=online)
    order_lines = pd.DataFrame(
        {
            "order_id": order_id[position.loc[basket_lines["basket"]].to_numpy()],
            "line_no": basket_lines["line_no"].to_numpy(),
            "sku": basket_lines["sku"].to_numpy(),
            "quantity": basket_lines["quantity"].to_numpy(),
            "cents": basket_lines["cents"].to_numpy(),
        }
    ).sort_values(["order_id", "line_no"], kind="stable", ignore_index=True)
    item_cents = (
        order_lines.assign(total=order_lines["quantity"] * order_lines["cents"])
        .groupby("order_id")["total"]
        .sum()
    )
    items_total = item_cents.reindex(order_id).to_numpy()
    shipping = np.where(pickup | (items_total >= 9900), 0, np.where(rng.random(n) < 0.5, 800, 1000))
    orders = pd.DataFrame(
        {
            "order_id": order_id,
            "person": person,
            "channel": ONLINE_CHANNELS[chan],
            "customer_id": customer_id,
            "phone": phone.to_numpy(object),
            "email": email.to_numpy(object),
            "order_local": order_local,
            "fulfilment": np.where(pickup, "pickup", "delivery"),
            "pickup_store_id": np.where(pickup, stores["store_id"].to_numpy()[np.maximum(home, 0)], None),
            "shipping_cents": shipping,
        }
    )

    # status lifecycle: first record on the creation day, later ones on the days they happen
    first_status = np.where((cancelled & (rng.random(n) < 0.5)) | (rng.random(n) < 0.03), "created", "paid")
    ship_day = day + 1 + (rng.random(n) < 0.4)
    ship_local = (
        start64
        + ship_day.astype("timedelta64[D]")
        + (_sample_seconds(rng, np.ones(12), n, 8)).astype("timedelta64[s]")
    )
    late_update = np.where(rng.random(n) < 0.04, 2, 0)
    deliver_day = ship_day + 1 + rng.integers(0, 4, n)
    deliver_local = (
        start64
        + deliver_day.astype("timedelta64[D]")
        + _sample_seconds(rng, np.ones(12), n, 9).astype("timedelta64[s]")
    )
    cancel_local = (
        start64
        + np.timedelta64(day + 1, "D")
        + _sample_seconds(rng, np.ones(14), n, 8).astype("timedelta64[s]")
    )
    ready_local = (
        start64
        + np.timedelta64(day + 1, "D")
        + _sample_seconds(rng, np.ones(2), n, 7).astype("timedelta64[s]")
    )
    pickup_day = day + 1 + rng.integers(0, 3, n)
    pickup_seconds = _sample_seconds(rng, STORE_HOURS, n, 10)
    pickup_store = np.maximum(home, 0)
    pickup_local = start64 + pickup_day.astype("timedelta64[D]") + pickup_seconds.astype("timedelta64[s]")
    pickup_shanghai = _to_shanghai(pickup_local, stores["timezone"].to_numpy()[pickup_store])
    too_early = pickup_shanghai <= ready_local
    pickup_day = pickup_day + too_early
    pickup_local = pickup_local + too_early.astype(np.int64).astype("timedelta64[D]")
    pickup_shanghai = _to_shanghai(pickup_local, stores["timezone"].to_numpy()[pickup_store])

    idx = np.arange(n)
    normal = ~cancelled & ~pickup
    collect = ~cancelled & pickup
    records = pd.concat(
        [
            pd.DataFrame({"o": idx, "status": first_status, "updated": order_local, "delay": 0}),
            pd.DataFrame(
                {"o": idx[cancelled], "status": "cancelled", "updated": cancel_local[cancelled], "delay": 0}
            ),
            pd.DataFrame(
                {
                    "o": idx[normal],
                    "status": "shipped",
                    "updated": ship_local[normal],
                    "delay": late_update[normal],
                }
            ),
            pd.DataFrame(
                {"o": idx[normal], "status": "delivered", "updated": deliver_local[normal], "delay": 0}
            ),
            pd.DataFrame(
                {"o": idx[collect], "status": "ready_for_pickup", "updated": ready_local[collect], "delay": 0}
            ),
            pd.DataFrame(
                {"o": idx[collect], "status": "completed", "updated": pickup_shanghai[collect], "delay": 0}
            ),
        ],
        ignore_index=True,
    )
    records["file_day"] = (records["updated"].to_numpy().astype("datetime64[D]") - start64).astype(
        int
    ) + records["delay"]
    records["order_id"] = order_id[records["o"].to_numpy()]
    records = records.drop(columns=["o", "delay"])

    # pick-ups: the same lines again in the store's POS file on the pick-up day, with online_order_id set
    collected = np.flatnonzero(collect)
    picked = order_lines[order_lines["order_id"].isin(order_id[collected])]
    at = pd.Series(np.arange(n), index=order_id).loc[picked["order_id"]].to_numpy()
    pickup_rows = pd.DataFrame(
        {
            "store": pickup_store[at],
            "receipt_no": (
                _text(stores["store_id"].to_numpy()[pickup_store[at]])
                + "-P"
                + _text(picked["order_id"].to_numpy())
            ).to_numpy(object),
            "line_no": picked["line_no"].to_numpy(),
            "local": pickup_local[at],
            "sku": picked["sku"].to_numpy(),
            "quantity": picked["quantity"].to_numpy(),
            "cents": picked["cents"].to_numpy(),
            "person": person[at],
            "online_order_id": picked["order_id"].to_numpy(),
            "original_receipt_no": None,
            "file_day": pickup_day[at],
        }
    )

    # reviews: a share of delivered / collected orders, one item each, rating driven by product quality
    done = np.flatnonzero((normal | collect) & (rng.random(n) < 0.3))
    done_at = np.where(pickup[done], pickup_shanghai[done], deliver_local[done])
    review_local = done_at + rng.integers(2 * 3600, 5 * 86400, len(done)).astype("timedelta64[s]")
    counts = order_lines.groupby("order_id").size().reindex(order_id[done]).to_numpy()
    first_line = order_lines.groupby("order_id").cumcount().to_numpy() == 0
    first_row = pd.Series(np.flatnonzero(first_line), index=order_lines["order_id"].to_numpy()[first_line])
    chosen = first_row.loc[order_id[done]].to_numpy() + np.floor(rng.random(len(done)) * counts).astype(int)
    sku = order_lines["sku"].to_numpy()[chosen]
    quality = world.products.set_index("sku")["quality"].reindex(sku).to_numpy()
    rating = np.clip(np.round(quality + rng.normal(0.0, 0.8, len(done))), 1, 5).astype(int)
    reviews = pd.DataFrame(
        {
            "review_id": ("RV" + _text(order_id[done])).to_numpy(object),
            "channel": ONLINE_CHANNELS[chan[done]],
            "customer_id": customer_id[done],
            "order_id": order_id[done],
            "sku": sku,
            "rating": rating,
            "review_local": review_local,
            "person": person[done],
            "file_day": (review_local.astype("datetime64[D]") - start64).astype(int),
        }
    )
    return orders, order_lines, records, pickup_rows, reviews


def _to_shanghai(local: np.ndarray, timezones: np.ndarray) -> np.ndarray:
    """Store-local wall times (naive) -> Shanghai wall times (naive), DST-aware through zoneinfo."""
    result = local.astype("datetime64[s]").copy()
    for tz in np.unique(timezones):
        mask = timezones == tz
        if not mask.any():
            continue
        stamps = pd.DatetimeIndex(local[mask]).tz_localize(
            ZoneInfo(tz), ambiguous="NaT", nonexistent="shift_forward"
        )
        result[mask] = (
            stamps.tz_convert(ZoneInfo(SHANGHAI)).tz_localize(None).to_numpy().astype("datetime64[s]")
        )
    return result


def _pos_sales(
    world: _World,
    day: int,
    rng: np.random.Generator,
    in_store: np.ndarray,
    buyer: np.ndarray,
    store: np.ndarray,
    lines: pd.DataFrame,
    pickup_rows: pd.DataFrame,
) -> pd.DataFrame:
    """POS rows created on `day`: the day's sales, pick-ups of online orders, and returns of the day's sales later on."""
    persons = world.persons
    stores = world.stores
    start64 = world.start64
    n = len(in_store)
    seconds = _sample_seconds(rng, STORE_HOURS, n, 10)
    receipt_store = store[in_store]
    order = np.lexsort((buyer[in_store], seconds, receipt_store))
    in_store, seconds, receipt_store = in_store[order], seconds[order], receipt_store[order]
    sequence = pd.Series(receipt_store).groupby(receipt_store).cumcount().to_numpy() + 1
    date_text = (world.start + timedelta(days=day)).strftime("%Y%m%d")
    receipt_no = (
        _text(stores["store_id"].to_numpy()[receipt_store]) + "-" + date_text + "-" + _int_text(sequence, 5)
    ).to_numpy(object)
    position = pd.Series(np.arange(n), index=in_store)
    sold = lines[lines["basket"].isin(in_store)]
    at = position.loc[sold["basket"]].to_numpy()
    sales = pd.DataFrame(
        {
            "store": receipt_store[at],
            "receipt_no": receipt_no[at],
            "line_no": sold["line_no"].to_numpy(),
            "local": start64 + np.timedelta64(day, "D") + seconds[at].astype("timedelta64[s]"),
            "sku": sold["sku"].to_numpy(),
            "quantity": sold["quantity"].to_numpy(),
            "cents": sold["cents"].to_numpy(),
            "person": buyer[in_store][at],
            "online_order_id": None,
            "original_receipt_no": None,
            "file_day": day,
        }
    ).sort_values(["receipt_no", "line_no"], ignore_index=True)

    # returns: some receipts bring one line back within a week, as a new receipt with negative quantity
    returning = sales.drop_duplicates("receipt_no")
    returning = returning[rng.random(len(returning)) < 0.03]
    line_count = sales.groupby("receipt_no").size().reindex(returning["receipt_no"]).to_numpy()
    first_row = pd.Series(
        np.flatnonzero(~sales["receipt_no"].duplicated()), index=sales["receipt_no"].drop_duplicates()
    )
    chosen = first_row.loc[returning["receipt_no"]].to_numpy() + np.floor(
        rng.random(len(returning)) * line_count
    ).astype(int)
    back = sales.iloc[chosen].reset_index(drop=True)
    return_day = day + rng.integers(1, 8, len(back))
    returns = back.assign(
        receipt_no=(_text(back["receipt_no"]) + "-R").to_numpy(object),
        line_no=1,
        quantity=-np.floor(rng.random(len(back)) * back["quantity"].to_numpy() + 1).astype(int),
        local=start64
        + return_day.astype("timedelta64[D]")
        + _sample_seconds(rng, STORE_HOURS, len(back), 10).astype("timedelta64[s]"),
        original_receipt_no=back["receipt_no"].to_numpy(),
        file_day=return_day,
    )
    rows = pd.concat([sales, pickup_rows, returns], ignore_index=True)

    # how the customer identified at the till: member card, phone, or not at all (per receipt, returns follow)
    receipts = rows["receipt_no"].str.replace(r"-R$", "", regex=True)
    unique_receipts, receipt_idx = np.unique(receipts.to_numpy(str), return_inverse=True)
    ident_u = rng.random(len(unique_receipts))[receipt_idx]
    phone_u = rng.random(len(unique_receipts))[receipt_idx]
    style = rng.integers(0, 10, len(unique_receipts))[receipt_idx]
    person = rows["person"].to_numpy()
    known = person >= 0
    safe = np.where(known, person, 0)
    member = persons["member_id"].to_numpy()[safe]
    registered = (
        known & (persons["register_day"].to_numpy()[safe] <= rows["file_day"].to_numpy()) & pd.notna(member)
    )
    by_card = registered & (ident_u < 0.9)
    by_phone = known & ~by_card & (phone_u < np.where(registered, 0.6, 0.45))
    card = _text(np.where(by_card, member, None))
    card = _text(
        np.select(
            [style == 0, style == 1],
            [card.str.lower().to_numpy(object), (card.str[:1] + " " + card.str[1:] + " ").to_numpy(object)],
            card.to_numpy(object),
        )
    )
    phone_digits = _text(persons["phone"].to_numpy()[safe])
    rows["member_card"] = card.where(by_card, None).to_numpy(object)
    rows["phone"] = (
        _phone_text(phone_digits, np.where(style < 6, 0, np.where(style < 8, 5, 1)))
        .where(by_phone, None)
        .to_numpy(object)
    )
    rows["member_id"] = np.where(by_card, member, None)
    rows["phone_e164"] = np.where(by_phone, ("+86" + phone_digits).to_numpy(object), None)
    return rows


# ---------------------------------------------------------------- files of one business day (with record faults)


@dataclass
class _File:
    feed: str
    business_day: int
    name: str
    header: str | None
    lines: list[str]
    faults: list[dict]
    truth_lines: pd.DataFrame | None = (
        None  # order-line truth: order_key, line_no, online_order_id, sku, valid, ...
    )
    identities: pd.DataFrame | None = None  # namespace, source_customer_id, person_id

    @property
    def text(self) -> str:
        rows = ([self.header] if self.header is not None else []) + self.lines
        return "".join(row + "\n" for row in rows)

    @property
    def malformed(self) -> int:
        return sum(1 for fault in self.faults if fault["kind"] == "malformed_line")


class _Cache:
    """Creations per day, computed once per run."""

    def __init__(self, world: _World) -> None:
        self.world = world
        self.days: dict[int, _Creations] = {}

    def get(self, day: int) -> _Creations:
        if day not in self.days:
            self.days[day] = _creations(self.world, day)
        return self.days[day]

    def landing_on(self, day: int, part: str) -> pd.DataFrame:
        frames = [getattr(self.get(d), part) for d in range(max(0, day - MAX_LAG_DAYS), day + 1)]
        frame = pd.concat(frames, ignore_index=True)
        return frame[frame["file_day"] == day].reset_index(drop=True)

    def forget_before(self, day: int) -> None:
        for old in [d for d in self.days if d < day - MAX_LAG_DAYS]:
            del self.days[old]


def _fault_masks(world: _World, day: int, stream: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rates = world.faults
    rng = _rng(world.seed, day, f"faults:{stream}")
    return (
        rng.random(n) < float(rates.malformed_line),
        rng.random(n) < float(rates.missing_id),
        rng.random(n) < float(rates.negative_price),
    )


def _truncate(lines: pd.Series, malformed: np.ndarray) -> list[str]:
    """The rendered lines with the malformed ones cut in half (a truncated JSON object)."""
    out = lines.tolist()
    for i in np.flatnonzero(malformed):  # only the few faulted lines
        out[i] = out[i][: len(out[i]) // 2]
    return out


def _ids(namespace: str, source_ids, person_index, persons: pd.DataFrame, **extra) -> pd.DataFrame:
    """(namespace, source id, person id) of every non-null id; person id is empty for anonymous visitors."""
    person_index = np.asarray(person_index)
    person_id = np.where(person_index >= 0, persons["person_id"].to_numpy()[np.maximum(person_index, 0)], "")
    frame = pd.DataFrame(
        {
            "namespace": namespace,
            "source_customer_id": np.asarray(source_ids, dtype=object),
            "person_id": person_id,
            **extra,
        }
    )
    return frame[frame["source_customer_id"].notna()]


def _online_file(world: _World, cache: _Cache, day: int) -> _File:
    records = cache.landing_on(day, "online_records")
    orders = pd.concat(
        [cache.get(d).online_orders for d in range(max(0, day - MAX_LAG_DAYS), day + 1)], ignore_index=True
    ).set_index("order_id")
    lines = pd.concat(
        [cache.get(d).online_lines for d in range(max(0, day - MAX_LAG_DAYS), day + 1)], ignore_index=True
    )
    status_rank = records["status"].map(
        {
            s: i
            for i, s in enumerate(
                ["created", "paid", "ready_for_pickup", "shipped", "delivered", "completed", "cancelled"]
            )
        }
    )
    records = records.assign(rank=status_rank).sort_values(
        ["updated", "order_id", "rank"], kind="stable", ignore_index=True
    )
    records = records.join(orders, on="order_id")
    n = len(records)
    malformed, missing, negative = _fault_masks(world, day, "online_orders", n)
    items = (
        records[["order_id"]]
        .assign(record=np.arange(n))
        .merge(lines, on="order_id")
        .sort_values(["record", "line_no"], kind="stable")
    )
    cents = items["cents"].to_numpy().copy()
    negate = negative[items["record"].to_numpy()] & (items["line_no"].to_numpy() == 1)
    cents[negate] = -cents[negate]
    item_text = (
        '{"sku":"'
        + _text(items["sku"])
        + '","quantity":'
        + _int_text(items["quantity"])
        + ',"unit_price":'
        + _money(cents)
        + "}"
    )
    # items are sorted by record: one join with ',' inside a record and '\n' after its last item, then one split
    record_of_item = items["record"].to_numpy()
    last_item = np.append(record_of_item[1:] != record_of_item[:-1], True)
    joined = "".join((item_text + _text(np.where(last_item, "\n", ","))).tolist())
    items_json = _text(joined.split("\n")[:-1]) if n else _text([])
    rendered = _json_lines(
        "online_orders",
        {
            "order_id": _text(np.where(missing, None, records["order_id"].to_numpy(object))),
            "channel": _text(records["channel"]),
            "customer_id": _text(records["customer_id"]),
            "phone": _text(records["phone"]),
            "email": _text(records["email"]),
            "order_ts": _iso(records["order_local"].to_numpy(), "+08:00"),
            "updated_ts": _iso(records["updated"].to_numpy(), "+08:00"),
            "status": _text(records["status"]),
            "fulfilment": _text(records["fulfilment"]),
            "pickup_store_id": _text(records["pickup_store_id"]),
            "shipping_fee": _money(records["shipping_cents"].to_numpy()),
            "currency": _text(np.full(n, "CNY", dtype=object)),
            "items": "[" + items_json + "]",
        },
    )
    faults = _fault_list(records["order_id"], malformed, missing, negative, first_line=1)
    truth = pd.DataFrame(
        {
            "feed": "online_orders",
            "order_key": items["order_id"].to_numpy(),
            "line_no": items["line_no"].to_numpy(),
            "online_order_id": "",
            "sku": items["sku"].to_numpy(),
            "valid": ~(malformed | missing)[items["record"].to_numpy()],
            "negative_price": negate,
            "is_return": False,
        }
    )
    persons = world.persons
    web_app = records["channel"].to_numpy() != "mini_program"
    identities = pd.concat(
        [
            _ids(
                "online_account",
                records["customer_id"].to_numpy()[web_app],
                records["person"].to_numpy()[web_app],
                persons,
            ),
            _ids(
                "mini_program",
                records["customer_id"].to_numpy()[~web_app],
                records["person"].to_numpy()[~web_app],
                persons,
            ),
        ]
    )
    name = _file_name("online_orders", world.start + timedelta(days=day))
    return _File("online_orders", day, name, None, _truncate(rendered, malformed), faults, truth, identities)


def _fault_list(keys: pd.Series, malformed, missing, negative, first_line: int) -> list[dict]:
    faults = []
    for kind, mask in (("malformed_line", malformed), ("missing_id", missing), ("negative_price", negative)):
        if mask is None:
            continue
        for i in np.flatnonzero(mask):  # only the faulted records
            faults.append({"kind": kind, "line": int(i) + first_line, "key": str(keys.iloc[i])})
    return faults


def _pos_files(world: _World, cache: _Cache, day: int) -> list[_File]:
    """One CSV per store for the day (rendered together, split by store); local wall-clock times."""
    stores = world.stores
    part = cache.landing_on(day, "pos_rows").sort_values(
        ["store", "local", "receipt_no", "line_no"], kind="stable", ignore_index=True
    )
    n = len(part)
    malformed, missing, negative = _fault_masks(world, day, "pos_sales", n)
    negative = negative & (part["quantity"].to_numpy() > 0)
    cents = np.where(negative, -part["cents"].to_numpy(), part["cents"].to_numpy())
    store_id = _text(stores["store_id"].to_numpy()[part["store"].to_numpy()])
    receipt = _text(np.where(missing, "", part["receipt_no"].to_numpy(object)))
    rendered = _csv_lines(
        "pos_sales",
        {
            "store_id": store_id,
            "receipt_no": receipt,
            "line_no": _int_text(part["line_no"]),
            "sold_at_local": _text(
                np.datetime_as_string(part["local"].to_numpy().astype("datetime64[s]"), unit="s")
            ).str.replace("T", " ", regex=False),
            "sku": _text(part["sku"]),
            "quantity": _int_text(part["quantity"]),
            "unit_price": _money(cents),
            "member_card": _text(part["member_card"]),
            "phone": _text(part["phone"]),
            "online_order_id": _text(part["online_order_id"]),
            "original_receipt_no": _text(part["original_receipt_no"]),
        },
    )
    header = ",".join(f.name for f in LANDING["pos_sales"].fields)
    if day >= int(world.faults.extra_column_from_day):
        rng = _rng(world.seed, day, "extra:pos_sales")
        union_id = _text(np.where(rng.random(n) < 0.2, "oU" + _random_codes(rng, n, 20, ALPHABET64), ""))
        rendered = rendered + "," + union_id
        header += f",{EXTRA_COLUMN}"
    garbage = "!!corrupt!!," + receipt + ",x#" + "," * 16
    out = rendered.where(~malformed, garbage).to_numpy(object)
    keys = _text(part["receipt_no"]) + "#" + _int_text(part["line_no"])
    truth = pd.DataFrame(
        {
            "feed": "pos_sales",
            "order_key": (store_id + "|" + _text(part["receipt_no"])).to_numpy(object),
            "line_no": part["line_no"].to_numpy(),
            "online_order_id": part["online_order_id"].fillna("").to_numpy(object),
            "sku": part["sku"].to_numpy(),
            "valid": ~(malformed | missing),
            "negative_price": negative,
            "is_return": part["quantity"].to_numpy() < 0,
        }
    )
    person = part["person"].to_numpy()
    identities = pd.concat(
        [
            _ids(
                "member", part["member_id"].to_numpy(), person, world.persons, store=part["store"].to_numpy()
            ),
            _ids(
                "phone", part["phone_e164"].to_numpy(), person, world.persons, store=part["store"].to_numpy()
            ),
        ]
    )
    bounds = np.searchsorted(part["store"].to_numpy(), np.arange(len(stores) + 1))
    files = []
    for store_index, store in enumerate(stores["store_id"]):  # one file per store
        lo, hi = bounds[store_index], bounds[store_index + 1]
        window = slice(lo, hi)
        faults = _fault_list(
            keys.iloc[window].reset_index(drop=True),
            malformed[window],
            missing[window],
            negative[window],
            first_line=2,
        )
        name = _file_name("pos_sales", world.start + timedelta(days=day), store)
        files.append(
            _File(
                "pos_sales",
                day,
                name,
                header,
                out[window].tolist(),
                faults,
                truth.iloc[window].reset_index(drop=True),
                identities[identities["store"] == store_index].drop(columns="store"),
            )
        )
    return files


def _app_file(world: _World, cache: _Cache, day: int) -> _File:
    """App SDK events: browsing of active users and anonymous visitors, and views/carts just before app orders."""
    rng = _rng(world.seed, day, "app")
    persons, devices = world.persons, world.devices
    start64 = world.start64
    orders = cache.get(day).online_orders
    lines = cache.get(day).online_lines
    app_orders = orders[orders["channel"] == "app"]
    bought = lines.merge(app_orders[["order_id", "person", "order_local"]], on="order_id")
    k = len(bought)
    order_seconds = (
        (bought["order_local"].to_numpy() - (start64 + np.timedelta64(day, "D")))
        .astype("timedelta64[s]")
        .astype(np.int64)
    )
    pre_person = np.concatenate([bought["person"].to_numpy(), bought["person"].to_numpy()])
    pre_seconds = np.concatenate(
        [
            np.maximum(0, order_seconds - rng.integers(300, 5400, k)),
            np.maximum(0, order_seconds - rng.integers(30, 300, k)),
        ]
    )
    pre_type = np.repeat(np.array(["view", "cart"], dtype=object), k)
    pre_sku = np.concatenate([bought["sku"].to_numpy(), bought["sku"].to_numpy()])
    pre_device = world.first_device[pre_person] + np.floor(
        rng.random(2 * k) * world.device_count[pre_person]
    ).astype(int)
    pre_logged = np.ones(2 * k, dtype=bool)

    app_users = np.flatnonzero(persons["uses_app"].to_numpy())
    activity = np.minimum(0.6, 0.12 * persons["base_rate"].to_numpy()[app_users] / world.rate)
    active = app_users[rng.random(len(app_users)) < activity]
    count = 1 + rng.poisson(4, len(active))
    person = np.repeat(active, count)
    m = len(person)
    session_start = np.repeat(_sample_seconds(rng, ONLINE_HOURS, len(active)), count)
    seconds = np.minimum(86399, session_start + rng.integers(0, 1800, m))
    device = world.first_device[person] + np.floor(rng.random(m) * world.device_count[person]).astype(int)
    sku = world.products["sku"].to_numpy()[world.sample_products(rng, person)]
    event_type = np.array(["view", "cart", "favourite"], dtype=object)[
        rng.choice(3, size=m, p=[0.8, 0.12, 0.08])
    ]
    logged = rng.random(m) < 0.75

    anonymous = np.flatnonzero(devices["person"].to_numpy() < 0)
    visiting = anonymous[rng.random(len(anonymous)) < 0.2]
    a_count = 1 + rng.poisson(3, len(visiting))
    a_device = np.repeat(visiting, a_count)
    a_m = len(a_device)
    a_seconds = np.minimum(
        86399,
        np.repeat(_sample_seconds(rng, ONLINE_HOURS, len(visiting)), a_count) + rng.integers(0, 1800, a_m),
    )
    a_sku = world.products["sku"].to_numpy()[world.sample_products(rng, np.full(a_m, -1))]
    a_type = np.array(["view", "cart", "favourite"], dtype=object)[
        rng.choice(3, size=a_m, p=[0.88, 0.08, 0.04])
    ]
    millis = rng.integers(0, 1000, 2 * k + m + a_m)

    events = pd.DataFrame(
        {
            "device": np.concatenate([pre_device, device, a_device]),
            "seconds": np.concatenate([pre_seconds, seconds, a_seconds]) * 1000 + millis,
            "event_type": np.concatenate([pre_type, event_type, a_type]),
            "sku": np.concatenate([pre_sku, sku, a_sku]),
            "logged": np.concatenate([pre_logged, logged, np.zeros(a_m, dtype=bool)]),
        }
    ).sort_values(["seconds", "device"], kind="stable", ignore_index=True)
    owner = devices["person"].to_numpy()[events["device"].to_numpy()]
    # every device of a person logs in at least once a day, so the device links to the account
    first_of_device = ~events["device"].duplicated().to_numpy()
    logged_in = (events["logged"].to_numpy() | first_of_device) & (owner >= 0)
    account = persons["account_id"].to_numpy()[np.maximum(owner, 0)]
    date_text = (world.start + timedelta(days=day)).strftime("%Y%m%d")
    n = len(events)
    device_ids = devices["device_id"].to_numpy()[events["device"].to_numpy()]
    utc = (
        start64
        + np.timedelta64(day, "D")
        - np.timedelta64(8, "h")
        + events["seconds"].to_numpy().astype("timedelta64[ms]")
    )
    malformed, _, _ = _fault_masks(world, day, "app_clickstream", n)
    event_id = ("ev" + date_text + _int_text(np.arange(1, n + 1), 7)).to_numpy(object)
    rendered = _json_lines(
        "app_clickstream",
        {
            "event_id": _text(event_id),
            "event_type": _text(events["event_type"]),
            "user_id": _text(np.where(logged_in, account, None)),
            "device_id": _text(device_ids),
            "sku": _text(events["sku"]),
            "event_ts": _text(np.datetime_as_string(utc, unit="ms")) + "Z",
            "session_id": "s" + date_text + "-" + _text(device_ids).str[1:9],
            "app_version": _text(devices["app_version"].to_numpy()[events["device"].to_numpy()]),
        },
    )
    identities = pd.concat(
        [
            _ids("online_account", np.where(logged_in, account, None), owner, world.persons),
            _ids("app_device", device_ids, owner, world.persons),
        ]
    )
    faults = _fault_list(pd.Series(event_id), malformed, None, None, first_line=1)
    name = _file_name("app_clickstream", world.start + timedelta(days=day))
    return _File("app_clickstream", day, name, None, _truncate(rendered, malformed), faults, None, identities)


def _mini_program_file(world: _World, cache: _Cache, day: int) -> _File:
    """Mini-program back-end log: browsing of openid users and browse/add_cart just before their orders."""
    rng = _rng(world.seed, day, "mini_program")
    persons = world.persons
    start64 = world.start64
    orders = cache.get(day).online_orders
    bought = cache.get(day).online_lines.merge(
        orders.loc[orders["channel"] == "mini_program", ["order_id", "person", "order_local"]], on="order_id"
    )
    k = len(bought)
    order_seconds = (
        (bought["order_local"].to_numpy() - (start64 + np.timedelta64(day, "D")))
        .astype("timedelta64[s]")
        .astype(np.int64)
    )
    users = np.flatnonzero(persons["openid"].notna().to_numpy())
    activity = np.minimum(0.5, 0.1 * persons["base_rate"].to_numpy()[users] / world.rate)
    active = users[rng.random(len(users)) < activity]
    count = 1 + rng.poisson(3, len(active))
    person = np.repeat(active, count)
    m = len(person)
    seconds = np.minimum(
        86399, np.repeat(_sample_seconds(rng, ONLINE_HOURS, len(active)), count) + rng.integers(0, 1500, m)
    )
    events = pd.DataFrame(
        {
            "person": np.concatenate([bought["person"].to_numpy(), bought["person"].to_numpy(), person]),
            "seconds": np.concatenate(
                [
                    np.maximum(0, order_seconds - rng.integers(240, 3600, k)),
                    np.maximum(0, order_seconds - rng.integers(20, 240, k)),
                    seconds,
                ]
            )
            * 1000
            + rng.integers(0, 1000, 2 * k + m),
            "action": np.concatenate(
                [
                    np.full(k, "browse", dtype=object),
                    np.full(k, "add_cart", dtype=object),
                    np.array(["browse", "add_cart", "collect"], dtype=object)[
                        rng.choice(3, size=m, p=[0.8, 0.12, 0.08])
                    ],
                ]
            ),
            "item_id": np.concatenate(
                [
                    bought["sku"].to_numpy(),
                    bought["sku"].to_numpy(),
                    world.products["sku"].to_numpy()[world.sample_products(rng, person)],
                ]
            ),
            "scene": MP_SCENES[rng.integers(0, len(MP_SCENES), 2 * k + m)],
            "share_phone": rng.random(2 * k + m) < 0.3,
        }
    ).sort_values(["seconds", "person"], kind="stable", ignore_index=True)
    owner = events["person"].to_numpy()
    # each openid shows its authorised phone at least once a day, so the openid links to a phone
    show_phone = events["share_phone"].to_numpy() | ~events["person"].duplicated().to_numpy()
    digits = _text(persons["online_phone"].to_numpy()[owner])
    phone = _phone_text(digits, np.where(rng.random(len(events)) < 0.8, 0, 6)).where(show_phone, None)
    epoch = (
        (start64 + np.timedelta64(day, "D") - np.timedelta64(8, "h") - np.datetime64("1970-01-01", "D"))
        .astype("timedelta64[ms]")
        .astype(np.int64)
    )
    n = len(events)
    date_text = (world.start + timedelta(days=day)).strftime("%Y%m%d")
    log_id = ("lg" + date_text + _int_text(np.arange(1, n + 1), 7)).to_numpy(object)
    malformed, _, _ = _fault_masks(world, day, "mini_program_clickstream", n)
    openid = persons["openid"].to_numpy()[owner]
    rendered = _json_lines(
        "mini_program_clickstream",
        {
            "log_id": _text(log_id),
            "openid": _text(openid),
            "bound_phone": phone,
            "action": _text(events["action"]),
            "item_id": _text(events["item_id"]),
            "ts": _int_text(epoch + events["seconds"].to_numpy()),
            "scene": _int_text(events["scene"]),
        },
    )
    identities = _ids("mini_program", openid, owner, persons)
    faults = _fault_list(pd.Series(log_id), malformed, None, None, first_line=1)
    name = _file_name("mini_program_clickstream", world.start + timedelta(days=day))
    return _File(
        "mini_program_clickstream", day, name, None, _truncate(rendered, malformed), faults, None, identities
    )


def _crm_file(world: _World, day: int) -> _File:
    """New members of the day (the first day carries every member registered before it) and a few changed ones."""
    rng = _rng(world.seed, day, "crm")
    persons = world.persons
    register_day = persons["register_day"].to_numpy()
    is_member = persons["member_id"].notna().to_numpy()
    new = (register_day == day) | ((day == 0) & (register_day < 0) & is_member)
    changed = is_member & (register_day < day) & ~new & (rng.random(len(persons)) < 0.0005)
    chosen = np.flatnonzero(new | changed)
    part = persons.iloc[chosen]
    n = len(part)
    moved = changed[chosen]
    cities = np.unique(persons["city"].to_numpy(object))
    city = np.where(moved, cities[rng.integers(0, len(cities), n)], part["city"].to_numpy())
    email = _text(part["email"])
    email = _text(np.where(rng.random(n) < 0.1, email.str.upper().to_numpy(object), email.to_numpy(object)))
    rendered = _csv_lines(
        "crm_members",
        {
            "member_id": _text(part["member_id"]),
            "phone": _phone_text(_text(part["phone"]), np.where(rng.random(n) < 0.85, 0, 6)),
            "email": email,
            "city": _text(city),
            "register_channel": _text(part["register_channel"]),
            "registered_at": _day_text(world.start64, part["register_day"].to_numpy()),
        },
    )
    header = ",".join(f.name for f in LANDING["crm_members"].fields)
    if day >= int(world.faults.extra_column_from_day):
        union_id = _text(np.where(rng.random(n) < 0.4, "oU" + _random_codes(rng, n, 20, ALPHABET64), ""))
        rendered = rendered + "," + union_id
        header += f",{EXTRA_COLUMN}"
    malformed, _, _ = _fault_masks(world, day, "crm_members", n)
    out = rendered.where(~malformed, "!!corrupt!!," + _text(part["member_id"]) + ",x#" + "," * 12).tolist()
    faults = _fault_list(_text(part["member_id"]), malformed, None, None, first_line=2)
    identities = _ids("member", part["member_id"].to_numpy(), chosen, persons)
    name = _file_name("crm_members", world.start + timedelta(days=day))
    return _File("crm_members", day, name, header, out, faults, None, identities)


def _reviews_file(world: _World, cache: _Cache, day: int) -> _File:
    reviews = cache.landing_on(day, "reviews").sort_values(
        ["review_local", "review_id"], kind="stable", ignore_index=True
    )
    n = len(reviews)
    rendered = _json_lines(
        "reviews",
        {
            "review_id": _text(reviews["review_id"]),
            "channel": _text(reviews["channel"]),
            "customer_id": _text(reviews["customer_id"]),
            "order_id": _text(reviews["order_id"]),
            "sku": _text(reviews["sku"]),
            "rating": _int_text(reviews["rating"]),
            "review_ts": _iso(reviews["review_local"].to_numpy(), "+08:00"),
            "review_text": _text(REVIEW_TEXT[reviews["rating"].to_numpy(dtype=int) - 1]),
        },
    )
    malformed, _, _ = _fault_masks(world, day, "reviews", n)
    web_app = reviews["channel"].to_numpy() != "mini_program"
    identities = pd.concat(
        [
            _ids(
                "online_account",
                reviews["customer_id"].to_numpy()[web_app],
                reviews["person"].to_numpy()[web_app],
                world.persons,
            ),
            _ids(
                "mini_program",
                reviews["customer_id"].to_numpy()[~web_app],
                reviews["person"].to_numpy()[~web_app],
                world.persons,
            ),
        ]
    )
    faults = _fault_list(reviews["review_id"], malformed, None, None, first_line=1)
    name = _file_name("reviews", world.start + timedelta(days=day))
    return _File("reviews", day, name, None, _truncate(rendered, malformed), faults, None, identities)


def _catalogue_file(world: _World) -> _File:
    products = world.products[~world.products["sku"].isin(world.unknown_skus)].sort_values(
        "sku", ignore_index=True
    )
    rendered = _csv_lines(
        "product_catalogue",
        {
            "sku": _text(products["sku"]),
            "product_name": _text(products["product_name"]),
            "category": _text(products["category"]),
            "brand": _text(products["brand"]),
            "list_price": _money(products["list_cents"].to_numpy()),
            "launched_at": _text(products["launched_at"]),
        },
    )
    header = ",".join(f.name for f in LANDING["product_catalogue"].fields)
    return _File(
        "product_catalogue", 0, _file_name("product_catalogue", world.start), header, rendered.tolist(), []
    )


def _business_files(world: _World, cache: _Cache, day: int, feed: str | None = None) -> list[_File]:
    """Every file of one business day (or of one feed), as the source systems produce them."""
    builders = {
        "online_orders": lambda: [_online_file(world, cache, day)],
        "app_clickstream": lambda: [_app_file(world, cache, day)],
        "mini_program_clickstream": lambda: [_mini_program_file(world, cache, day)],
        "pos_sales": lambda: _pos_files(world, cache, day),
        "crm_members": lambda: [_crm_file(world, day)],
        "reviews": lambda: [_reviews_file(world, cache, day)],
    }
    files = [_catalogue_file(world)] if day == 0 and feed in (None, "product_catalogue") else []
    for name, build in builders.items():
        if feed in (None, name):
            files.extend(build())
    return files


# ---------------------------------------------------------------- delivery: folders, late and re-sent files, truth


def _deliver(world: _World, cache: _Cache, day: int) -> list[tuple[_File, str, dict]]:
    """The files landing in the delivery folder of `day`: on-time files, late files, re-sent copies."""
    late = {(feed, name) for feed, name, _ in world.late_plan}
    delivered = [
        (f, f.name, {"kind": "regular"})
        for f in _business_files(world, cache, day)
        if (f.feed, f.name) not in late
    ]
    lag = int(world.faults.late_by_days)
    for feed, name, business_day in world.late_plan:
        if business_day + lag == day:
            for f in _business_files(world, cache, business_day, feed):
                if f.name == name:
                    delivered.append((f, name, {"kind": "late", "late_by_days": lag}))
    for feed, name, business_day in world.resend_plan:
        if business_day + 1 == day:
            for f in _business_files(world, cache, business_day, feed):
                if f.name == name:
                    stem, ext = name.rsplit(".", 1)
                    original = f"{feed}/{(world.start + timedelta(days=business_day)).isoformat()}/{name}"
                    delivered.append(
                        (f, f"{stem}_resend.{ext}", {"kind": "redelivered", "original": original})
                    )
    return delivered


def _day_pieces(first_day: int, days: int) -> list[tuple[int, int]]:
    """Consecutive [first, last) day ranges, one per core, each long enough to amortise its process.

    One piece unless the process can fork safely: on Linux, before any other thread runs (a notebook or
    test with Spark started has py4j threads, whose locks a forked child could inherit held). Spawned
    processes are no option: they re-run the caller's main module.
    """
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return [(first_day, days)]
    count = max(
        1, min(os.cpu_count() or 1, MAX_GENERATOR_PROCESSES, (days - first_day) // MIN_DAYS_PER_PROCESS)
    )
    bounds = np.linspace(first_day, days, count + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _write_days(landing: Path, world: _World, first: int, last: int) -> None:
    """Write delivery days [first, last) with one cache of creations."""
    cache = _Cache(world)
    for day in range(first, last):
        _write_day(landing, world, cache, day)
        cache.forget_before(day)


def _write_day(landing: Path, world: _World, cache: _Cache, day: int) -> None:
    delivery_date = (world.start + timedelta(days=day)).isoformat()
    files, faults, lines, identities = [], [], [], []
    for f, name, info in _deliver(world, cache, day):
        relative = f"{f.feed}/{delivery_date}/{name}"
        target = landing / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.text, encoding="utf-8", newline="\n")
        files.append(
            {
                "feed": f.feed,
                "file": relative,
                "delivery_date": delivery_date,
                "business_date": (world.start + timedelta(days=f.business_day)).isoformat(),
                "records": len(f.lines),
                "malformed": f.malformed,
                "header": f.header is not None,
                "extra_columns": [EXTRA_COLUMN] if f.header and f.header.endswith(EXTRA_COLUMN) else [],
                **info,
            }
        )
        faults.extend({**fault, "feed": f.feed, "file": relative} for fault in f.faults)
        if f.truth_lines is not None:
            lines.append(f.truth_lines.assign(file=relative))
        if f.identities is not None:
            identities.append(f.identities)
    truth = landing / TRUTH_DIR / "days"
    truth.mkdir(parents=True, exist_ok=True)
    (truth / f"{delivery_date}.json").write_text(
        json.dumps(
            {"delivery_date": delivery_date, "files": files, "faults": faults}, indent=1, sort_keys=True
        )
        + "\n",
        encoding="utf-8",
    )
    pd.concat(lines, ignore_index=True).to_csv(
        truth / f"{delivery_date}_lines.csv", index=False, lineterminator="\n"
    )
    (
        pd.concat(identities, ignore_index=True)
        .drop_duplicates()
        .sort_values(["namespace", "source_customer_id"], ignore_index=True)
        .to_csv(truth / f"{delivery_date}_identities.csv", index=False, lineterminator="\n")
    )


# ---------------------------------------------------------------- the manifest of the truth


def _summarise(landing: Path, params: dict, world: _World) -> dict:
    """The manifest: every delivery day's truth in landing/_truth/days merged into one set of facts."""
    truth = landing / TRUTH_DIR / "days"
    day_files = sorted(truth.glob("????-??-??.json"))
    days = [json.loads(p.read_text(encoding="utf-8")) for p in day_files]
    files = [f for d in days for f in d["files"]]
    fault_records = [f for d in days for f in d["faults"]]
    lines = pd.concat(
        [
            pd.read_csv(p.with_name(p.stem + "_lines.csv"), dtype=str, keep_default_na=False)
            for p in day_files
        ],
        ignore_index=True,
    )
    identities = (
        pd.concat(
            [
                pd.read_csv(p.with_name(p.stem + "_identities.csv"), dtype=str, keep_default_na=False)
                for p in day_files
            ],
            ignore_index=True,
        )
        .drop_duplicates(["namespace", "source_customer_id"])
        .sort_values(["namespace", "source_customer_id"], ignore_index=True)
    )
    identities.to_csv(landing / TRUTH_DIR / "identities.csv", index=False, lineterminator="\n")

    valid = lines[lines["valid"] == "True"]
    online = valid[valid["feed"] == "online_orders"]
    pos = valid[valid["feed"] == "pos_sales"]
    online_keys = set(online["order_key"])
    pos_bopis = pos[pos["online_order_id"] != ""]
    pos_returns = pos[pos["is_return"] == "True"]
    order_ref = np.where(pos["online_order_id"] != "", pos["online_order_id"], pos["order_key"])
    all_lines = pd.concat(
        [
            pd.DataFrame(
                {
                    "ref": online["order_key"],
                    "line_no": online["line_no"],
                    "sku": online["sku"],
                    "neg": online["negative_price"],
                }
            ),
            pd.DataFrame(
                {"ref": order_ref, "line_no": pos["line_no"], "sku": pos["sku"], "neg": pos["negative_price"]}
            ),
        ]
    )
    distinct_lines = all_lines.drop_duplicates(["ref", "line_no"])
    feeds = {}
    for feed in LANDING:
        mine = [f for f in files if f["feed"] == feed]
        feeds[feed] = {
            "files": mine,
            "records": sum(f["records"] for f in mine),
            "malformed": sum(f["malformed"] for f in mine),
        }
    by_kind: dict[str, int] = {}
    for fault in fault_records:
        by_kind[fault["kind"]] = by_kind.get(fault["kind"], 0) + 1
    redelivered = [f for f in files if f["kind"] == "redelivered"]
    late = [f for f in files if f["kind"] == "late"]
    by_kind["redelivered_file"] = len(redelivered)
    by_kind["late_file"] = len(late)
    extra_from = int(world.faults.extra_column_from_day)
    person_ids = identities.loc[identities["person_id"] != "", "person_id"]
    sold_skus = set(all_lines["sku"])
    delivery_dates = [d["delivery_date"] for d in days]
    return {
        "generator": {
            **params,
            "delivery_dates": [delivery_dates[0], delivery_dates[-1]] if days else [],
            "days_delivered": len(days),
        },
        "feeds": feeds,
        "persons": int(person_ids.nunique()),
        "anonymous_devices": int(
            ((identities["namespace"] == "app_device") & (identities["person_id"] == "")).sum()
        ),
        "identities": {ns: int(c) for ns, c in identities.groupby("namespace").size().items()},
        "orders": {
            "online_orders": len(online_keys),
            "online_order_lines": int(len(online.drop_duplicates(["order_key", "line_no"]))),
            "online_records": sum(f["records"] for f in feeds["online_orders"]["files"]),
            "pos_receipts": int(pos["order_key"].nunique()),
            "pos_sale_receipts": int(
                pos.loc[(pos["online_order_id"] == "") & (pos["is_return"] != "True"), "order_key"].nunique()
            ),
            "pos_return_receipts": int(pos_returns["order_key"].nunique()),
            "pos_pickup_receipts": int(pos_bopis["order_key"].nunique()),
            "pos_lines": int(len(pos.drop_duplicates(["order_key", "line_no"]))),
            "bopis_orders": int(len(online_keys & set(pos_bopis["online_order_id"]))),
            "expected_distinct_orders": int(len(online_keys | set(order_ref))),
            "expected_order_lines": int(len(distinct_lines)),
            "negative_price_lines": int((distinct_lines["neg"] == "True").sum()),
            "definitions": (
                "counted over parseable records with an id; online orders by order_id, POS receipts by store|receipt_no "
                "(returns are receipts of their own); a pick-up receipt is the online order it carries, so "
                "expected_distinct_orders = online orders + POS receipts - bopis_orders, and lines likewise"
            ),
        },
        "faults": {"by_kind": dict(sorted(by_kind.items())), "records": fault_records},
        "redelivered_files": redelivered,
        "late_files": late,
        "extra_column": {
            "column": EXTRA_COLUMN,
            "feeds": ["crm_members", "pos_sales"],
            "from_date": (world.start + timedelta(days=extra_from)).isoformat(),
        },
        "unknown_skus": {
            "skus": world.unknown_skus,
            "sold": sorted(set(world.unknown_skus) & sold_skus),
            "sales_lines": int(all_lines["sku"].isin(world.unknown_skus).sum()),
        },
        "campaign": world.campaign,
    }


def _params(world: _World, cfg: Config, customers: int) -> dict:
    faults = cfg.generator.faults
    return {
        "customers": customers,
        "seed": world.seed,
        "start_date": world.start.isoformat(),
        "horizon_days": world.horizon,
        "orders_per_customer_per_day": world.rate,
        "products": int(cfg.generator.products),
        "anonymous_visitors_share": float(cfg.generator.anonymous_visitors_share),
        "faults": {
            "malformed_line": float(faults.malformed_line),
            "missing_id": float(faults.missing_id),
            "negative_price": float(faults.negative_price),
            "redelivered_files": int(faults.redelivered_files),
            "late_files": int(faults.late_files),
            "late_by_days": int(faults.late_by_days),
            "extra_column_from_day": int(faults.extra_column_from_day),
        },
        "campaign": dict(cfg.generator.campaign or {}),
        "stores": [
            {"store_id": s.store_id, "city": s.city, "timezone": s.timezone} for s in cfg.silver.stores
        ],
    }


def generate(
    cfg: Config,
    landing_dir: str | Path | None = None,
    *,
    customers: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    start_date: date | str | None = None,
    first_day: int = 0,
) -> dict:
    """Write business days [first_day, days) of every channel feed into the landing folder; return the manifest.

    Persons and products are fixed by the seed and each day by (seed, day, feed), so generating days in pieces
    gives the same bytes as one run. The manifest (<landing>/_manifest.json) and <landing>/_truth/ hold the truth.
    """
    gen = cfg.generator
    customers = int(gen.customers if customers is None else customers)
    days = int(gen.days if days is None else days)
    seed = int(gen.seed if seed is None else seed)
    start = gen.start_date if start_date is None else start_date
    start = date.fromisoformat(start) if isinstance(start, str) else start
    if not 0 <= first_day < days:
        raise ValueError(f"generate: first_day={first_day} must be >= 0 and below days={days}")
    if customers < 10:
        raise ValueError(f"generate: customers={customers} is too few; use at least 10")
    landing = Path(landing_dir if landing_dir is not None else cfg.resolve(cfg.lake.landing))
    world = _build_world(cfg, customers, seed, start)
    params = _params(world, cfg, customers)
    manifest_path = landing / MANIFEST
    existing = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.exists() else {}
    previous = {k: v for k, v in existing.get("generator", {}).items() if k in params}
    if previous and previous != params:
        changed = sorted(k for k in params if previous.get(k) != params[k])
        raise ValueError(
            f"{landing} already holds feeds generated with other settings ({', '.join(changed)}); "
            "generate into an empty landing folder or keep the same settings"
        )
    pieces = _day_pieces(first_day, days)
    if len(pieces) == 1:
        _write_days(landing, world, *pieces[0])
    else:
        # Each piece of days is written by its own forked process; a day's bytes depend only on
        # (seed, day, feed), so the files are the same as from one process.
        with ProcessPoolExecutor(max_workers=len(pieces), mp_context=get_context("fork")) as pool:
            for done in [pool.submit(_write_days, landing, world, *piece) for piece in pieces]:
                done.result()
    manifest = _summarise(landing, params, world)
    if world.campaign_truth is not None:
        world.campaign_truth.to_csv(landing / TRUTH_DIR / CAMPAIGN_TRUTH, index=False, lineterminator="\n")
    kept = {k: v for k, v in existing.items() if k not in manifest}
    manifest = {**kept, **manifest}
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
