"""Identity resolution: observations from bronze feeds, connected persons, stable keys, golden records."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyspark.sql.functions as F
import pytest
from chispa import assert_df_equality

from o2o.contracts import SILVER, bronze_schema
from o2o.frames import local_frame
from o2o.silver.identity import (
    DRIVER_GRAPH_MAX_ROWS,
    LINK_SCHEMA,
    OBSERVATION_SCHEMA,
    IdentityNotConverged,
    connected_labels,
    customer_key_lookup,
    driver_labels,
    golden_customers,
    identity_observations,
    resolve_identities,
    retired_customer_keys,
)
from o2o.silver.pii import canonical_phone

SALT = "test-salt"
RUN_TS = datetime(2026, 7, 1, 0, 0, tzinfo=timezone.utc)
ZONES = {"S001": "Asia/Shanghai", "S008": "Europe/London"}


def ts(day: int, hour: int = 0, month: int = 6) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=timezone.utc)


def h(value: str) -> str:
    """Salted hash the way the PII rules define it, computed independently with hashlib."""
    return hashlib.sha256(f"{SALT}|{value}".encode()).hexdigest()


def new_key(node: str) -> str:
    return "C" + hashlib.sha256(node.encode()).hexdigest()[:16]


# Inputs are built in the JVM (o2o.frames.local_frame): a createDataFrame input starts Python workers in
# every job of the iterative resolution, which made these tests minutes long. Expected frames stay plain.


def bronze(spark, feed: str, rows: list[dict]):
    schema = bronze_schema(feed)
    lineage = {"_source_file": "f.json", "_ingested_at": ts(1), "_run_id": "bronze-1"}
    return local_frame(
        spark, [tuple({**lineage, **row}.get(f.name) for f in schema.fields) for row in rows], schema
    )


def observations(spark, rows: list[tuple]):
    """(namespace, id, member_id, phone_hash, email_hash, city, channel, seen_ts); is_identified from namespace."""
    data = [(*row, row[0] != "app_device") for row in rows]
    if len(data) > 50:  # hundreds of literals would be re-planned in every job: materialise them once instead
        return spark.createDataFrame(data, OBSERVATION_SCHEMA).localCheckpoint()
    return local_frame(spark, data, OBSERVATION_SCHEMA)


def no_links(spark):
    return local_frame(spark, [], LINK_SCHEMA)


def identity_rows(spark, rows: list[tuple]):
    return local_frame(spark, rows, SILVER["customer_identity"])


def edge_rows(spark, rows: list[tuple]):
    return local_frame(spark, rows, SILVER["identity_edges"])


def check(actual, expected):
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


# ---------------------------------------------------------------- resolving persons


# The graph labelled in the driver (the default bound) or with Spark jobs (a bound of 0 rows).
BOTH_PATHS = pytest.mark.parametrize("driver_max", [DRIVER_GRAPH_MAX_ROWS, 0], ids=["driver", "spark"])


@BOTH_PATHS
def test_chain_phone_then_email_is_one_person(spark, driver_max):
    obs = observations(
        spark,
        [
            ("online_account", "a", None, "P", None, None, "web", ts(3)),
            ("mini_program", "b", None, "P", "E", None, "mini_program", ts(2)),
            ("member", "M1", "M1", None, "E", "Shanghai", "pos", ts(5)),
            ("online_account", "z", None, "Q", None, None, "app", ts(4)),
        ],
    )
    result = resolve_identities(
        obs, no_links(spark), None, None, "run-1", RUN_TS, driver_graph_max_rows=driver_max
    )

    person, loner = new_key("member:M1"), new_key("online_account:z")  # the smallest node of each component
    expected = identity_rows(
        spark,
        [
            ("online_account", "a", person, ts(3), "run-1"),
            ("mini_program", "b", person, ts(2), "run-1"),
            ("member", "M1", person, ts(5), "run-1"),
            ("online_account", "z", loner, ts(4), "run-1"),
        ],
    )
    check(result.identity, expected)
    check(
        result.edges,
        edge_rows(
            spark,
            [
                ("online_account", "a", "phone", "P"),
                ("mini_program", "b", "phone", "P"),
                ("mini_program", "b", "email", "E"),
                ("member", "M1", "member", "M1"),
                ("member", "M1", "email", "E"),
                ("online_account", "z", "phone", "Q"),
            ],
        ),
    )
    assert result.merges.count() == 0
    assert result.iterations >= 2


@BOTH_PATHS
def test_propagation_that_does_not_converge_fails_clearly(spark, driver_max):
    obs = observations(
        spark,
        [
            ("online_account", "a", None, "P", None, None, "web", ts(1)),
            ("mini_program", "b", None, "P", "E", None, "mini_program", ts(1)),
            ("member", "M1", "M1", None, "E", None, "pos", ts(1)),
        ],
    )
    with pytest.raises(IdentityNotConverged, match="max_identity_iterations"):
        resolve_identities(
            obs,
            no_links(spark),
            None,
            None,
            "run-1",
            RUN_TS,
            max_iterations=1,
            driver_graph_max_rows=driver_max,
        )


def test_two_existing_persons_merge_older_key_survives(spark):
    existing_identity = identity_rows(
        spark,
        [
            ("online_account", "a", "K_OLD", ts(1, month=1), "run-0"),
            ("member", "M1", "K_OLD", ts(2, month=1), "run-0"),
            ("mini_program", "b", "K_NEW", ts(1, month=3), "run-0"),
            ("app_device", "d", "K_NEW", ts(2, month=3), "run-0"),
            ("online_account", "z", "K_OTHER", ts(1, month=2), "run-0"),
        ],
    )
    existing_edges = edge_rows(
        spark,
        [
            ("online_account", "a", "phone", "P1"),
            ("member", "M1", "member", "M1"),
            ("member", "M1", "phone", "P1"),
            ("mini_program", "b", "email", "E2"),
            ("mini_program", "b", "link", "mini_program:b"),
            ("app_device", "d", "link", "mini_program:b"),
            ("online_account", "z", "phone", "P9"),
        ],
    )
    # A new web account shows both P1 (person K_OLD) and E2 (person K_NEW): they are one person.
    obs = observations(spark, [("online_account", "x", None, "P1", "E2", None, "web", ts(10))])
    result = resolve_identities(obs, no_links(spark), existing_identity, existing_edges, "run-2", RUN_TS)

    check(
        result.identity,
        identity_rows(
            spark,
            [
                ("online_account", "x", "K_OLD", ts(10), "run-2"),
                ("mini_program", "b", "K_OLD", ts(1, month=3), "run-2"),
                ("app_device", "d", "K_OLD", ts(2, month=3), "run-2"),  # not observed this run, re-pointed
            ],
        ),
    )
    check(
        result.merges, spark.createDataFrame([("K_NEW", "K_OLD", "run-2", RUN_TS)], SILVER["customer_merges"])
    )
    check(
        result.edges,
        edge_rows(spark, [("online_account", "x", "phone", "P1"), ("online_account", "x", "email", "E2")]),
    )
    touched = {(r.namespace, r.source_customer_id) for r in result.assignments.collect()}
    assert ("online_account", "z") not in touched  # the unrelated person is not even read into the graph

    existing_customers = local_frame(
        spark,
        [
            (
                "K_OLD",
                "M1",
                "P1",
                None,
                "web",
                ts(1, month=1),
                ["pos", "web"],
                True,
                True,
                "Beijing",
                "run-0",
            ),
            (
                "K_NEW",
                None,
                None,
                "E2",
                "mini_program",
                ts(1, month=3),
                ["app", "mini_program"],
                False,
                True,
                None,
                "run-0",
            ),
            ("K_OTHER", None, "P9", None, "web", ts(1, month=2), ["web"], False, True, None, "run-0"),
        ],
        SILVER["customers"],
    )
    golden = golden_customers(result.assignments, obs, existing_customers, result.merges, "run-2")
    expected = spark.createDataFrame(
        [
            (
                "K_OLD",
                "M1",
                "P1",
                "E2",
                "web",
                ts(1, month=1),
                ["app", "mini_program", "pos", "web"],
                True,
                True,
                "Beijing",
                "run-2",
            )
        ],
        SILVER["customers"],
    )
    check(golden, expected)
    check(retired_customer_keys(result.merges), spark.createDataFrame([("K_NEW",)], "customer_key string"))


def test_new_identity_joining_a_person_keeps_its_key(spark):
    existing_identity = identity_rows(spark, [("member", "M1", "K1", ts(1), "run-0")])
    existing_edges = edge_rows(spark, [("member", "M1", "member", "M1"), ("member", "M1", "phone", "P")])
    obs = observations(
        spark,
        [
            ("mini_program", "o", None, "P", None, None, "mini_program", ts(9)),
            ("member", "M1", "M1", "P", None, None, "pos", ts(8)),  # seen again, later than first seen
        ],
    )
    result = resolve_identities(obs, no_links(spark), existing_identity, existing_edges, "run-2", RUN_TS)

    check(result.identity, identity_rows(spark, [("mini_program", "o", "K1", ts(9), "run-2")]))
    check(result.edges, edge_rows(spark, [("mini_program", "o", "phone", "P")]))
    assert result.merges.count() == 0


def test_identities_seen_again_with_nothing_new_keep_their_key_without_a_graph(spark):
    existing_identity = identity_rows(
        spark,
        [("member", "M1", "K1", ts(5), "run-0"), ("mini_program", "o", "K1", ts(6), "run-0")],
    )
    existing_edges = edge_rows(
        spark,
        [
            ("member", "M1", "member", "M1"),
            ("member", "M1", "phone", "P"),
            ("mini_program", "o", "phone", "P"),
        ],
    )
    obs = observations(
        spark,
        [
            (
                "member",
                "M1",
                "M1",
                "P",
                None,
                None,
                "pos",
                ts(2),
            ),  # a late file: seen before its first sighting
            ("mini_program", "o", None, "P", None, None, "mini_program", ts(9)),
        ],
    )
    result = resolve_identities(obs, no_links(spark), existing_identity, existing_edges, "run-2", RUN_TS)

    check(result.identity, identity_rows(spark, [("member", "M1", "K1", ts(2), "run-2")]))
    assert result.edges.count() == 0
    assert result.merges.count() == 0
    check(
        result.assignments,
        spark.createDataFrame(
            [("member", "M1", "K1"), ("mini_program", "o", "K1")],
            "namespace string, source_customer_id string, customer_key string",
        ),
    )
    assert result.iterations == 1  # no new identity or edge: the graph is empty, the first round ends it

    existing_customers = local_frame(
        spark,
        [("K1", "M1", "P", None, "pos", ts(5), ["mini_program", "pos"], True, True, None, "run-0")],
        SILVER["customers"],
    )
    golden = golden_customers(result.assignments, obs, existing_customers, result.merges, "run-2")
    expected = spark.createDataFrame(
        [("K1", "M1", "P", None, "pos", ts(2), ["mini_program", "pos"], True, True, None, "run-2")],
        SILVER["customers"],
    )
    check(golden, expected)


def test_rerun_with_same_observations_changes_nothing(spark):
    obs = observations(
        spark,
        [
            ("online_account", "a", None, "P", None, None, "web", ts(3)),
            ("mini_program", "b", None, "P", "E", None, "mini_program", ts(2)),
            ("member", "M1", "M1", None, "E", "Chengdu", "crm", ts(1)),
            ("app_device", "d", None, None, None, None, "app", ts(4)),
        ],
    )
    links = local_frame(spark, [("app_device", "d", "online_account", "a")], LINK_SCHEMA)
    first = resolve_identities(obs, links, None, None, "run-1", RUN_TS)
    identity, edges = first.identity.localCheckpoint(), first.edges.localCheckpoint()
    customers = golden_customers(first.assignments, obs, None, first.merges, "run-1").localCheckpoint()
    assert identity.select("customer_key").distinct().count() == 1
    assert customers.count() == 1

    second = resolve_identities(obs, links, identity, edges, "run-2", RUN_TS)
    assert second.identity.count() == 0
    assert second.edges.count() == 0
    assert second.merges.count() == 0
    assert golden_customers(second.assignments, obs, customers, second.merges, "run-2").count() == 0


def test_device_never_logged_in_stays_an_anonymous_profile(spark):
    clicks = bronze(
        spark,
        "app_clickstream",
        [
            {
                "event_id": "e1",
                "event_type": "view",
                "user_id": None,
                "device_id": "d1",
                "event_ts": "2026-06-01T08:00:00Z",
            },
            {
                "event_id": "e2",
                "event_type": "cart",
                "user_id": "u1",
                "device_id": "d1",
                "event_ts": "2026-06-02T08:00:00Z",
            },
            {
                "event_id": "e3",
                "event_type": "view",
                "user_id": None,
                "device_id": "d2",
                "event_ts": "2026-06-03T08:00:00Z",
            },
        ],
    )
    obs, links = identity_observations({"app_clickstream": clicks}, SALT, "86", ZONES)
    check(links, spark.createDataFrame([("app_device", "d1", "online_account", "u1")], LINK_SCHEMA))

    result = resolve_identities(obs, links, None, None, "run-1", RUN_TS)
    linked, anonymous = new_key("app_device:d1"), new_key("app_device:d2")
    check(
        customer_key_lookup(result.identity),
        spark.createDataFrame(
            [("app_device", "d1", linked), ("online_account", "u1", linked), ("app_device", "d2", anonymous)],
            "namespace string, source_customer_id string, customer_key string",
        ),
    )
    golden = golden_customers(result.assignments, obs, None, result.merges, "run-1")
    check(
        golden.select("customer_key", "first_seen_ts", "channels_seen", "is_member", "is_identified"),
        spark.createDataFrame(
            [(linked, ts(1, 8), ["app"], False, True), (anonymous, ts(3, 8), ["app"], False, False)],
            "customer_key string, first_seen_ts timestamp, channels_seen array<string>, is_member boolean, is_identified boolean",
        ),
    )


# ---------------------------------------------------------------- observations from bronze


def test_phone_formats_and_channels_link_one_person(spark):
    feeds = {
        "online_orders": bronze(
            spark,
            "online_orders",
            [
                {
                    "order_id": "o1",
                    "channel": "web",
                    "customer_id": "acc-1",
                    "phone": "138-1234-5678",
                    "order_ts": "2026-06-01T10:00:00+08:00",
                },
                {"order_id": "o2", "channel": "web", "customer_id": "acc-bad", "_corrupt_record": "{oops"},
            ],
        ),
        "mini_program_clickstream": bronze(
            spark,
            "mini_program_clickstream",
            [{"log_id": "l1", "openid": "op-1", "bound_phone": "+86 138 1234 5678", "ts": 1780000000000}],
        ),
        "pos_sales": bronze(
            spark,
            "pos_sales",
            [
                {
                    "store_id": "S008",
                    "receipt_no": "r1",
                    "line_no": 1,
                    "sold_at_local": "2026-06-01 12:00:00",
                    "phone": "0086 13812345678",
                },
                {
                    "store_id": "S008",
                    "receipt_no": "r1",
                    "line_no": 2,
                    "sold_at_local": "2026-06-01 12:00:00",
                    "phone": "0086 13812345678",
                },
                {
                    "store_id": "S001",
                    "receipt_no": "r2",
                    "line_no": 1,
                    "sold_at_local": "2026-06-02 09:00:00",
                },
                {
                    "store_id": "S001",
                    "receipt_no": "r3",
                    "line_no": 1,
                    "sold_at_local": "2026-06-02 10:00:00",
                    "member_card": " m 001 ",
                },
            ],
        ),
    }
    obs, links = identity_observations(feeds, SALT, "86", ZONES)
    phone = h("+8613812345678")
    expected = spark.createDataFrame(
        [
            ("online_account", "acc-1", None, phone, None, None, "web", ts(1, 2), True),
            (
                "mini_program",
                "op-1",
                None,
                phone,
                None,
                None,
                "mini_program",
                datetime(2026, 5, 28, 20, 26, 40, tzinfo=timezone.utc),
                True,
            ),
            ("phone", phone, None, phone, None, None, "pos", ts(1, 11), True),  # London summer time, UTC+1
            ("member", "M001", "M001", None, None, None, "pos", ts(2, 2), True),  # Shanghai, UTC+8
        ],
        OBSERVATION_SCHEMA,
    )
    check(obs, expected)  # the anonymous receipt r2 and the corrupt order gave no identity
    assert links.count() == 0

    result = resolve_identities(obs, links, None, None, "run-1", RUN_TS)
    keys = {r.namespace: r.customer_key for r in result.assignments.collect()}
    assert keys["online_account"] == keys["mini_program"] == keys["phone"] == new_key("mini_program:op-1")
    assert keys["member"] == new_key("member:M001")


def test_repeated_sightings_keep_the_first_and_last_of_each_attribute_set(spark):
    def view(event_id: str, user: str, day: int) -> dict:
        return {
            "event_id": event_id,
            "event_type": "view",
            "user_id": user,
            "event_ts": f"2026-06-{day:02d}T08:00:00Z",
        }

    def open_id(log_id: str, phone: str | None, day: int) -> dict:
        return {
            "log_id": log_id,
            "openid": "op-1",
            "bound_phone": phone,
            "ts": int(ts(day, 8).timestamp() * 1000),
        }

    feeds = {
        "app_clickstream": bronze(
            spark,
            "app_clickstream",
            [view("e1", "u1", 3), view("e2", "u1", 1), view("e3", "u1", 9), view("e4", "u2", 5)],
        ),
        "mini_program_clickstream": bronze(
            spark,
            "mini_program_clickstream",
            [
                open_id("l1", None, 2),
                open_id("l2", "13812345678", 4),
                open_id("l3", "13812345678", 6),
                open_id("l4", None, 8),
            ],
        ),
    }
    obs, _ = identity_observations(feeds, SALT, "86", ZONES)
    phone = h("+8613812345678")
    check(
        obs,
        spark.createDataFrame(
            [
                # u1 seen on days 3, 1, 9: the first and the last sighting; u2 once.
                ("online_account", "u1", None, None, None, None, "app", ts(1, 8), True),
                ("online_account", "u1", None, None, None, None, "app", ts(9, 8), True),
                ("online_account", "u2", None, None, None, None, "app", ts(5, 8), True),
                # op-1 without a phone on days 2 and 8, with one on days 4 and 6: each set keeps its ends.
                ("mini_program", "op-1", None, None, None, None, "mini_program", ts(2, 8), True),
                ("mini_program", "op-1", None, None, None, None, "mini_program", ts(8, 8), True),
                ("mini_program", "op-1", None, phone, None, None, "mini_program", ts(4, 8), True),
                ("mini_program", "op-1", None, phone, None, None, "mini_program", ts(6, 8), True),
            ],
            OBSERVATION_SCHEMA,
        ),
    )
    # The golden record reads the latest phone and the earliest sighting from the reduced rows.
    result = resolve_identities(obs, no_links(spark), None, None, "run-1", RUN_TS)
    golden = golden_customers(result.assignments, obs, None, result.merges, "run-1")
    check(
        golden.where(F.col("customer_key") == new_key("mini_program:op-1")).select(
            "phone_hash", "first_seen_ts"
        ),
        spark.createDataFrame([(phone, ts(2, 8))], "phone_hash string, first_seen_ts timestamp"),
    )


def test_canonical_phone_follows_the_rules_in_order(spark):
    typed_to_e164 = {
        "138-1234-5678": "+8613812345678",  # national number of the default country
        "(+86) 138 1234 5678": "+8613812345678",  # leading '+': kept as typed
        "0086 13812345678": "+8613812345678",  # '00' international prefix
        "8613812345678": "+8613812345678",  # country code and 11 digits already there
        "010 6552 9988": "+861065529988",  # leading '0': national trunk prefix
        "+44 20 7946 0958": "+442079460958",
        "0044 20 7946 0958": "+442079460958",
        "++86 138 1234 5678": "+8613812345678",  # a second '+' is noise
        "+0086 13812345678": "+008613812345678",  # '+' wins over '00': kept as typed
        "86 1381234567": "+86861381234567",  # '86' + 10 digits is not a country code, a national number
        "12-34-56": None,  # six digits: too short to be a phone
        "+": None,
        "": None,
        None: None,
    }
    df = spark.createDataFrame([(typed,) for typed in typed_to_e164], "typed string")

    got = {
        r["typed"]: r["e164"]
        for r in df.select("typed", canonical_phone(F.col("typed"), "86").alias("e164")).collect()
    }

    assert got == typed_to_e164


def test_observations_never_hold_raw_phone_or_email(spark):
    feeds = {
        "crm_members": bronze(
            spark,
            "crm_members",
            [
                {
                    "member_id": "m7",
                    "phone": "139 0000 1111",
                    "email": " Ann.Lee@Example.com ",
                    "city": "Chengdu",
                    "register_channel": "pos",
                    "registered_at": "2026-05-03",
                },
            ],
        ),
        "online_orders": bronze(
            spark,
            "online_orders",
            [
                {
                    "order_id": "o1",
                    "channel": "mini_program",
                    "customer_id": "op-9",
                    "phone": "13900001111",
                    "email": "ann.lee@example.com",
                    "order_ts": "2026-06-01T10:00:00Z",
                }
            ],
        ),
        "reviews": bronze(
            spark,
            "reviews",
            [
                {
                    "review_id": "v1",
                    "channel": "app",
                    "customer_id": "acc-3",
                    "rating": 5,
                    "review_ts": "2026-06-04T10:00:00+02:00",
                }
            ],
        ),
    }
    obs, _ = identity_observations(feeds, SALT, "86", ZONES)
    rows = obs.collect()  # a handful of rows
    values = [str(v) for row in rows for v in row.asDict().values() if v is not None]
    assert not [v for v in values if "@" in v or "0000" in v or "1111" in v or "example" in v.lower()]
    crm = [r for r in rows if r.namespace == "member"][0]
    assert (crm.member_id, crm.phone_hash, crm.email_hash, crm.city, crm.channel) == (
        "M7",
        h("+8613900001111"),
        h("ann.lee@example.com"),
        "Chengdu",
        "pos",
    )
    assert {(r.namespace, r.source_customer_id, r.channel) for r in rows} == {
        ("member", "M7", "pos"),
        ("mini_program", "op-9", "mini_program"),
        ("online_account", "acc-3", "app"),
    }


# ---------------------------------------------------------------- labelling the graph: driver and Spark rounds

# A chain d-c-b-a through three groups, a pair x-y, and e with no edge. Rounds by hand (labels after each):
# 1: d->c, c->b, b->a, y->x; 2: d->b, c->a; 3: d->a; 4: nothing changes, so 4 rounds.
CHAIN_GRAPH = [
    ("d", "g1"),
    ("c", "g1"),
    ("c", "g2"),
    ("b", "g2"),
    ("b", "g3"),
    ("a", "g3"),
    ("x", "g4"),
    ("y", "g4"),
]
CHAIN_LABELS = {"a": "a", "b": "a", "c": "a", "d": "a", "e": "e", "x": "x", "y": "x"}


@BOTH_PATHS
def test_both_ways_of_labelling_take_the_same_rounds_to_the_smallest_node(spark, driver_max):
    nodes = local_frame(spark, [(n,) for n in sorted(CHAIN_LABELS)], "node string")
    graph = local_frame(spark, CHAIN_GRAPH, "node string, group string")

    labels, rounds = connected_labels(nodes, graph, max_iterations=10, driver_max_rows=driver_max)

    assert {r.node: r.label for r in labels.collect()} == CHAIN_LABELS
    assert rounds == 4
    with pytest.raises(IdentityNotConverged, match="after 3 iterations"):
        connected_labels(nodes, graph, max_iterations=3, driver_max_rows=driver_max)


def test_driver_rounds_order_nodes_as_spark_compares_strings():
    # Spark compares strings by their UTF-8 bytes: "Z" < "a" < "é"; a Unicode-aware collation would not.
    graph = pa.table({"node": ["é", "a", "Z", "q"], "group": ["g", "g", "g", "h"]})
    labels, rounds = driver_labels(graph, max_iterations=5)
    assert dict(zip(labels["node"].to_pylist(), labels["label"].to_pylist(), strict=True)) == {
        "é": "Z",
        "a": "Z",
        "Z": "Z",
        "q": "q",
    }
    assert rounds == 2


# ---------------------------------------------------------------- a larger random graph against union-find


def _union_find_components(identities: list[str], attributes: list[tuple[str, str]]) -> set[frozenset[str]]:
    parent = {node: node for node in identities}

    def find(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    first_holder: dict[str, str] = {}
    for node, value in attributes:
        if value in first_holder:
            parent[find(node)] = find(first_holder[value])
        else:
            first_holder[value] = node
    groups: dict[str, set[str]] = {}
    for node in identities:
        groups.setdefault(find(node), set()).add(node)
    return {frozenset(group) for group in groups.values()}


def test_random_chains_resolve_like_union_find_also_incrementally(spark):
    rng = np.random.default_rng(7)
    namespaces = ["online_account", "mini_program", "member"]
    rows, attributes, identities = [], [], []
    for chain in range(200):
        length = int(rng.integers(1, 5))
        for position in range(length):
            node = (namespaces[int(rng.integers(0, 3))], f"c{chain}-{position}")
            # Neighbours in a chain share a phone or an email; a few chains touch another chain's phone.
            phone = f"P{chain}-{position}" if position % 2 == 0 else f"P{chain}-{position - 1}"
            email = f"E{chain}-{position}" if position % 2 == 1 else f"E{chain}-{position - 1}"
            if rng.random() < 0.05:
                phone = f"P{int(rng.integers(0, 200))}-0"
            day = int(rng.integers(1, 28))
            rows.append((*node, None, phone, email, None, "web", ts(day)))
            identities.append(f"{node[0]}:{node[1]}")
            attributes += [
                (f"{node[0]}:{node[1]}", f"phone={phone}"),
                (f"{node[0]}:{node[1]}", f"email={email}"),
            ]
    expected = _union_find_components(identities, attributes)

    def components(assignment_rows) -> set[frozenset[str]]:
        groups: dict[str, set[str]] = {}
        for r in assignment_rows:
            groups.setdefault(r.customer_key, set()).add(f"{r.namespace}:{r.source_customer_id}")
        return {frozenset(group) for group in groups.values()}

    full = resolve_identities(observations(spark, rows), no_links(spark), None, None, "run-1", RUN_TS)
    full_rows = full.assignments.collect()  # 200 chains, a few hundred rows
    assert components(full_rows) == expected
    assert {r.customer_key for r in full_rows} == {new_key(min(group)) for group in expected}
    print(
        f"random graph: {len(identities)} identities, {len(expected)} persons, {full.iterations} iterations"
    )

    # The same observations in two runs: the second sees only its half plus the stored tables.
    first = resolve_identities(observations(spark, rows[::2]), no_links(spark), None, None, "run-1", RUN_TS)
    stored_identity, stored_edges = first.identity.localCheckpoint(), first.edges.localCheckpoint()
    second = resolve_identities(
        observations(spark, rows[1::2]), no_links(spark), stored_identity, stored_edges, "run-2", RUN_TS
    )
    latest = {(r.channel, r.source_customer_id): r.customer_key for r in stored_identity.collect()}
    latest.update({(r.channel, r.source_customer_id): r.customer_key for r in second.identity.collect()})
    final = [
        type("Row", (), {"namespace": n, "source_customer_id": s, "customer_key": k})
        for (n, s), k in latest.items()
    ]
    assert components(final) == expected
    merges = second.merges.collect()
    assert {m.merged_key for m in merges}.isdisjoint(
        latest.values()
    )  # no identity still points to a merged key
    print(f"incremental: {second.iterations} iterations, {len(merges)} merges")
