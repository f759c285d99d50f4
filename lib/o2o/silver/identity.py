"""Identity resolution (OneID): channel identities -> observations -> connected persons with stable customer keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql.types import BooleanType, StringType, StructField, StructType, TimestampType

from o2o.contracts import CHANNELS, CORRUPT, SILVER
from o2o.frames import empty_frame, union_all
from o2o.silver import pii
from o2o.silver.pii import canonical_email, salted_hash

# Identity namespaces (customer_identity.channel holds the namespace).
ONLINE_ACCOUNT = "online_account"  # web/app platform account
MINI_PROGRAM = "mini_program"  # mini-program openid
APP_DEVICE = "app_device"  # app device id
MEMBER = "member"  # CRM member id = normalised POS member card
PHONE = "phone"  # POS customer known only by phone: source id = salted hash of the canonical phone
NAMESPACES = (ONLINE_ACCOUNT, MINI_PROGRAM, APP_DEVICE, MEMBER, PHONE)

# Attributes that connect identities (silver.identity_edges.attribute).
ATTRIBUTES = ("member", "phone", "email", "link")
KEY_GROUP = "key"  # an existing customer_key, used only inside the resolver (never persisted)

# A graph of up to this many (node, group) rows is labelled in the driver (Arrow and numpy, one collect of
# about 100 bytes a row), a larger one by rounds of Spark jobs. The same rounds either way, so the same
# labels and iteration count; in the driver a round takes milliseconds instead of a few Spark jobs.
DRIVER_GRAPH_MAX_ROWS = 1_000_000

OBSERVATION_SCHEMA = StructType(
    [
        StructField("namespace", StringType()),
        StructField("source_customer_id", StringType()),
        StructField("member_id", StringType()),
        StructField("phone_hash", StringType()),
        StructField("email_hash", StringType()),
        StructField("city", StringType()),
        StructField("channel", StringType()),
        StructField("seen_ts", TimestampType()),
        StructField("is_identified", BooleanType()),
    ]
)
LINK_SCHEMA = StructType(
    [
        StructField("namespace", StringType()),
        StructField("source_customer_id", StringType()),
        StructField("linked_namespace", StringType()),
        StructField("linked_source_customer_id", StringType()),
    ]
)
ASSIGNMENT_SCHEMA = StructType(
    [
        StructField("namespace", StringType()),
        StructField("source_customer_id", StringType()),
        StructField("customer_key", StringType()),
    ]
)
ID = ["namespace", "source_customer_id"]


class IdentityNotConverged(RuntimeError):
    """Label propagation still changed labels after the configured number of iterations."""


@dataclass(frozen=True)
class IdentityResult:
    """What one identity resolution run produces (all lazy DataFrames but `iterations`).

    identity: new or changed silver.customer_identity rows; edges: new silver.identity_edges rows;
    merges: silver.customer_merges rows; assignments: (namespace, source_customer_id, customer_key)
    of every identity the run touched, changed or not (the input of `golden_customers`);
    iterations: label-propagation rounds run, the last one being the round that changed nothing.
    """

    identity: DataFrame
    edges: DataFrame
    merges: DataFrame
    assignments: DataFrame
    iterations: int


# ---------------------------------------------------------------- identity columns shared with the orders stage


def clean_id(value: Column) -> Column:
    """A source id trimmed; null when empty."""
    trimmed = F.trim(value)
    return F.when(F.length(trimmed) > 0, trimmed)


def online_namespace(channel: Column) -> Column:
    """Namespace of an online customer id by its sales channel: web/app account or mini-program openid."""
    normalised = F.lower(F.trim(channel))
    return F.when(normalised.isin("web", "app"), F.lit(ONLINE_ACCOUNT)).when(
        normalised == "mini_program", F.lit(MINI_PROGRAM)
    )


def member_source_id(card: Column) -> Column:
    """Member id from a CRM member id or a POS member card: upper case, no white space; null when empty."""
    normalised = F.upper(F.regexp_replace(card, r"\s+", ""))
    return F.when(F.length(normalised) > 0, normalised)


def pos_identity(member_card: Column, phone_hash: Column) -> tuple[Column, Column]:
    """(namespace, source_customer_id) of a POS sale: the member card, else the phone hash; both null when anonymous.

    `phone_hash` is a column computed beforehand (pii.phone_hash), so the hash is computed once per row rather
    than once per use.
    """
    card = member_source_id(member_card)
    namespace = F.when(card.isNotNull(), F.lit(MEMBER)).when(phone_hash.isNotNull(), F.lit(PHONE))
    return namespace, F.coalesce(card, phone_hash)


def identity_node(namespace: Column, source_customer_id: Column) -> Column:
    """One string per identity, 'namespace:source_customer_id' (namespaces hold no colon)."""
    return F.concat(namespace, F.lit(":"), source_customer_id)


def new_customer_key(min_node: Column) -> Column:
    """Deterministic key of a brand-new person: 'C' + 16 hex of SHA-256 of its smallest identity node."""
    return F.concat(F.lit("C"), F.substring(F.sha2(min_node, 256), 1, 16))


# ---------------------------------------------------------------- bronze -> observations


def _usable(df: DataFrame) -> DataFrame:
    return df.where(F.col(CORRUPT).isNull())


def _iso_ts(value: Column) -> Column:
    """UTC timestamp of an ISO 8601 string with offset (or Z); null when unparseable."""
    return F.try_to_timestamp(value)


def _local_to_utc(local: Column, store_id: Column, store_timezones: dict[str, str]) -> Column:
    """UTC timestamp of 'yyyy-MM-dd HH:mm:ss' store-local time; null for an unknown store."""
    if not store_timezones:
        return F.lit(None).cast(TimestampType())
    zones = F.create_map(*[F.lit(part) for pair in sorted(store_timezones.items()) for part in pair])
    zone = F.try_element_at(zones, F.trim(store_id))
    parsed = F.try_to_timestamp(F.trim(local), F.lit("yyyy-MM-dd HH:mm:ss"))
    return F.when(zone.isNotNull(), F.to_utc_timestamp(parsed, zone))


def _observation(
    namespace: Column,
    source_customer_id: Column,
    channel: Column,
    seen_ts: Column,
    member_id: Column | None = None,
    phone_hash: Column | None = None,
    email_hash: Column | None = None,
    city: Column | None = None,
) -> list[Column]:
    nothing = F.lit(None).cast(StringType())
    return [
        namespace.alias("namespace"),
        source_customer_id.alias("source_customer_id"),
        (member_id if member_id is not None else nothing).alias("member_id"),
        (phone_hash if phone_hash is not None else nothing).alias("phone_hash"),
        (email_hash if email_hash is not None else nothing).alias("email_hash"),
        (city if city is not None else nothing).alias("city"),
        channel.alias("channel"),
        seen_ts.cast(TimestampType()).alias("seen_ts"),
        (namespace != F.lit(APP_DEVICE)).alias("is_identified"),
    ]


def identity_observations(
    feeds: dict[str, DataFrame], salt: str, country_code: str, store_timezones: dict[str, str]
) -> tuple[DataFrame, DataFrame]:
    """Every sighting of a channel identity in the given bronze feeds, and the direct id-id links they show.

    Observations (OBSERVATION_SCHEMA, distinct rows): namespace, source id, the member id / salted phone and
    email hashes / city it carries, the sales channel, when it was seen (UTC), and whether the identity is
    a known person (false for app devices). Sightings that agree on all but the time are kept as two rows,
    the first and the last (one when they are equal). Raw phones and emails never leave this function.
    Links (LINK_SCHEMA): an app device seen with a logged-in account. A POS member card is already the
    member identity itself (namespace 'member'), so it needs no link row.
    Feeds absent from `feeds` contribute nothing; corrupt rows and rows without an id are ignored;
    anonymous POS sales (no card, no phone) yield no identity.
    """

    def phone_hash(column: Column) -> Column:
        return pii.phone_hash(column, salt, country_code)

    def email_hash(column: Column) -> Column:
        return salted_hash(canonical_email(column), salt)

    parts: list[DataFrame] = []
    links: list[DataFrame] = []

    if "online_orders" in feeds:
        orders = _usable(feeds["online_orders"])
        parts.append(
            orders.select(
                *_observation(
                    online_namespace(F.col("channel")),
                    clean_id(F.col("customer_id")),
                    F.lower(F.trim(F.col("channel"))),
                    F.coalesce(_iso_ts(F.col("order_ts")), _iso_ts(F.col("updated_ts"))),
                    phone_hash=phone_hash(F.col("phone")),
                    email_hash=email_hash(F.col("email")),
                )
            )
        )
    if "app_clickstream" in feeds:
        clicks = _usable(feeds["app_clickstream"])
        account, device = clean_id(F.col("user_id")), clean_id(F.col("device_id"))
        seen = _iso_ts(F.col("event_ts"))
        parts.append(clicks.select(*_observation(F.lit(ONLINE_ACCOUNT), account, F.lit("app"), seen)))
        parts.append(clicks.select(*_observation(F.lit(APP_DEVICE), device, F.lit("app"), seen)))
        links.append(
            clicks.select(
                F.lit(APP_DEVICE).alias("namespace"),
                device.alias("source_customer_id"),
                F.lit(ONLINE_ACCOUNT).alias("linked_namespace"),
                account.alias("linked_source_customer_id"),
            )
        )
    if "mini_program_clickstream" in feeds:
        mini = _usable(feeds["mini_program_clickstream"])
        parts.append(
            mini.select(
                *_observation(
                    F.lit(MINI_PROGRAM),
                    clean_id(F.col("openid")),
                    F.lit("mini_program"),
                    F.timestamp_millis(F.col("ts")),
                    phone_hash=phone_hash(F.col("bound_phone")),
                )
            )
        )
    if "pos_sales" in feeds:
        pos = _usable(feeds["pos_sales"]).withColumn("_phone_hash", phone_hash(F.col("phone")))
        namespace, source_id = pos_identity(F.col("member_card"), F.col("_phone_hash"))
        parts.append(
            pos.select(
                *_observation(
                    namespace,
                    source_id,
                    F.lit("pos"),
                    _local_to_utc(F.col("sold_at_local"), F.col("store_id"), store_timezones),
                    member_id=member_source_id(F.col("member_card")),
                    phone_hash=F.col("_phone_hash"),
                )
            )
        )
    if "crm_members" in feeds:
        crm = _usable(feeds["crm_members"])
        register_channel = F.lower(F.trim(F.col("register_channel")))
        member = member_source_id(F.col("member_id"))
        parts.append(
            crm.select(
                *_observation(
                    F.lit(MEMBER),
                    member,
                    # The member's sales channel of registration when the CRM names one, else 'crm'.
                    F.when(register_channel.isin(*CHANNELS), register_channel).otherwise(F.lit("crm")),
                    F.to_timestamp(F.try_to_date(F.trim(F.col("registered_at")), "yyyy-MM-dd")),
                    member_id=member,
                    phone_hash=phone_hash(F.col("phone")),
                    email_hash=email_hash(F.col("email")),
                    city=clean_id(F.col("city")),
                )
            )
        )
    if "reviews" in feeds:
        reviews = _usable(feeds["reviews"])
        parts.append(
            reviews.select(
                *_observation(
                    online_namespace(F.col("channel")),
                    clean_id(F.col("customer_id")),
                    F.lower(F.trim(F.col("channel"))),
                    _iso_ts(F.col("review_ts")),
                )
            )
        )

    spark = next(iter(feeds.values())).sparkSession if feeds else SparkSession.active()
    observations = union_all([empty_frame(spark, OBSERVATION_SCHEMA), *parts])
    direct_links = union_all([empty_frame(spark, LINK_SCHEMA), *links])
    # Later steps use a sighting's time only as the earliest (first seen) or the latest (newest attribute
    # value) of rows that agree on everything else, so each such group keeps its first and last sighting:
    # a clickstream's million events of a few thousand identities become a few thousand rows.
    facts = [name for name in OBSERVATION_SCHEMA.fieldNames() if name != "seen_ts"]
    sightings = (
        observations.where(F.col("namespace").isNotNull() & F.col("source_customer_id").isNotNull())
        .groupBy(*facts)
        .agg(F.min("seen_ts").alias("_first"), F.max("seen_ts").alias("_last"))
        .select(*facts, F.explode(F.array_distinct(F.array("_first", "_last"))).alias("seen_ts"))
    )
    return (
        sightings.select(*OBSERVATION_SCHEMA.fieldNames()),
        direct_links.where(
            F.col("source_customer_id").isNotNull() & F.col("linked_source_customer_id").isNotNull()
        ).distinct(),
    )


# ---------------------------------------------------------------- observations -> persons


def observation_edges(observations: DataFrame, links: DataFrame) -> DataFrame:
    """silver.identity_edges rows the observations and links show (distinct).

    A link A -> B becomes two 'link' edges with value 'B-namespace:B-id', one on A and one on B, so a shared
    value connects them like a shared phone does.
    """
    attributes = (
        observations.select(
            *ID,
            F.explode(
                F.array(
                    F.struct(F.lit("member").alias("attribute"), F.col("member_id").alias("value")),
                    F.struct(F.lit("phone").alias("attribute"), F.col("phone_hash").alias("value")),
                    F.struct(F.lit("email").alias("attribute"), F.col("email_hash").alias("value")),
                )
            ).alias("edge"),
        )
        .select(*ID, "edge.attribute", "edge.value")
        .where(F.col("value").isNotNull())
    )
    linked = identity_node(F.col("linked_namespace"), F.col("linked_source_customer_id"))
    link_from = links.select(*ID, F.lit("link").alias("attribute"), linked.alias("value"))
    link_to = links.select(
        F.col("linked_namespace").alias("namespace"),
        F.col("linked_source_customer_id").alias("source_customer_id"),
        F.lit("link").alias("attribute"),
        linked.alias("value"),
    )
    return attributes.unionByName(link_from).unionByName(link_to).distinct()


def connected_labels(
    nodes: DataFrame,
    graph: DataFrame,
    max_iterations: int,
    checkpoint_every: int = 3,
    driver_max_rows: int = DRIVER_GRAPH_MAX_ROWS,
) -> tuple[DataFrame, int]:
    """(node, label) with label = the smallest node of its connected component, and the rounds it took.

    `graph` is bipartite (node, group): nodes sharing a group are connected. Each round takes the smallest
    label per group, then per node; it stops at the first round that changes no label. A graph of at most
    `driver_max_rows` rows runs its rounds in the driver (`driver_labels`); a larger one in Spark, with the
    labels cached each round and local-checkpointed every `checkpoint_every` rounds to keep plans short.
    """
    graph = graph.select("node", "group").distinct().cache()
    rows = graph.count()
    if rows <= driver_max_rows:
        # Bounded: at most driver_max_rows rows come back.
        graph_labels, iterations = driver_labels(graph.toArrow(), max_iterations)
        graph.unpersist()
        labelled = nodes.sparkSession.createDataFrame(graph_labels, "node string, label string")
        # Nodes outside the graph (no edge) are their own component.
        final = (
            nodes.select("node")
            .distinct()
            .join(labelled, "node", "left")
            .select("node", F.coalesce(F.col("label"), F.col("node")).alias("label"))
            .localCheckpoint(eager=True)
        )
        return final, iterations
    labels = nodes.select("node", F.col("node").alias("label")).distinct()
    cached: DataFrame | None = None
    for iteration in range(1, max_iterations + 1):
        group_labels = graph.join(labels, "node").groupBy("group").agg(F.min("label").alias("label"))
        candidates = (
            graph.join(group_labels, "group")
            .select("node", "label", F.lit(None).cast(StringType()).alias("previous"))
            .unionByName(labels.select("node", "label", F.col("label").alias("previous")))
        )
        updated = candidates.groupBy("node").agg(
            F.min("label").alias("label"), F.max("previous").alias("previous")
        )
        updated = (
            updated.localCheckpoint(eager=True) if iteration % checkpoint_every == 0 else updated.cache()
        )
        changed = updated.where(F.col("label") != F.col("previous")).count()
        if cached is not None:
            cached.unpersist()
        cached = updated if iteration % checkpoint_every else None
        labels = updated.select("node", "label")
        if changed == 0:
            # The outputs are read several times after the loop: keep the labels, not the loop's lineage.
            final = labels if cached is None else labels.localCheckpoint(eager=True)
            if cached is not None:
                cached.unpersist()
            graph.unpersist()
            return final, iteration
    if cached is not None:
        cached.unpersist()
    graph.unpersist()
    raise _not_converged(max_iterations)


def driver_labels(graph: pa.Table, max_iterations: int) -> tuple[pa.Table, int]:
    """`connected_labels`' rounds on an Arrow (node, group) table: (node, label) of every node, and the rounds.

    Nodes are numbered in the byte order Spark compares strings in, so the smallest number of a component
    is its smallest node, as in Spark's rounds.
    """
    node_column, group_column = graph.column("node"), graph.column("group")
    names = pc.unique(node_column)
    names = names.take(pc.sort_indices(names))
    node = pc.index_in(node_column, value_set=names).to_numpy()
    group = pc.index_in(group_column, value_set=pc.unique(group_column)).to_numpy()
    groups = int(group.max()) + 1 if len(group) else 0
    label = np.arange(len(names))
    for iteration in range(1, max_iterations + 1):
        group_label = np.full(groups, len(names))
        np.minimum.at(group_label, group, label[node])
        updated = label.copy()
        np.minimum.at(updated, node, group_label[group])
        changed = np.count_nonzero(updated != label)
        label = updated
        if changed == 0:
            return pa.table({"node": names, "label": names.take(pa.array(label))}), iteration
    raise _not_converged(max_iterations)


def _not_converged(max_iterations: int) -> IdentityNotConverged:
    return IdentityNotConverged(
        f"identity resolution: labels still changed after {max_iterations} iterations "
        "(silver.max_identity_iterations); the identity graph has longer chains than allowed. "
        "Raise silver.max_identity_iterations in conf/<env>.yaml (or O2O__SILVER__MAX_IDENTITY_ITERATIONS), "
        "or look for an attribute value shared by implausibly many identities."
    )


def _empty(spark: SparkSession, schema: StructType) -> DataFrame:
    return empty_frame(spark, schema)


def resolve_identities(
    observations: DataFrame,
    links: DataFrame,
    existing_identity: DataFrame | None,
    existing_edges: DataFrame | None,
    run_id: str,
    run_ts: datetime,
    max_iterations: int = 30,
    checkpoint_every: int = 3,
    driver_graph_max_rows: int = DRIVER_GRAPH_MAX_ROWS,
) -> IdentityResult:
    """Persons (connected components over shared member id, phone, email and direct links) with stable keys.

    Only what this run adds can change a person, so only that part of the graph is computed: identities
    seen for the first time, the edges not yet in silver.identity_edges, the existing identities that share
    a value with those edges, and every identity of the existing customer keys among those (an existing
    person is connected, so its key joins it as a whole). An identity seen again with no new edge keeps
    its key; a late sighting can still move its first_seen_ts.
    A component keeps its oldest existing key (earliest first_seen_ts, then smallest key); the other
    existing keys in it are merged into that one (a merge row each, all their identities re-pointed).
    A component without an existing key gets `new_customer_key(smallest node)`.
    `max_iterations` is silver.max_identity_iterations; IdentityNotConverged is raised past it. A graph of
    at most `driver_graph_max_rows` rows is labelled in the driver (`connected_labels`).
    """
    spark = observations.sparkSession
    existing_identity = (
        existing_identity if existing_identity is not None else _empty(spark, SILVER["customer_identity"])
    )
    existing_edges = existing_edges if existing_edges is not None else _empty(spark, SILVER["identity_edges"])

    observed = observations.where(F.col("namespace").isNotNull() & F.col("source_customer_id").isNotNull())
    observed_first_seen = observed.groupBy(*ID).agg(F.min("seen_ts").alias("observed_first_seen_ts"))
    new_edges = observation_edges(observed, links)
    edge_columns = list(new_edges.columns)
    # Read by the graph and returned as the new silver.identity_edges rows: computed once.
    fresh_edges = new_edges.join(
        existing_edges.select(*edge_columns), edge_columns, "left_anti"
    ).localCheckpoint(eager=True)
    # Read by the nodes and the graph: computed once (a scan of every stored edge).
    shared_edges = (
        existing_edges.select(*edge_columns)
        .join(fresh_edges.select("attribute", "value").distinct(), ["attribute", "value"], "left_semi")
        .localCheckpoint(eager=True)
    )
    known = existing_identity.select(
        F.col("channel").alias("namespace"),
        "source_customer_id",
        F.col("customer_key").alias("existing_key"),
        F.col("first_seen_ts").alias("existing_first_seen_ts"),
    )
    touched = (
        observed_first_seen.select(*ID)
        .join(known, ID, "left_anti")
        .unionByName(fresh_edges.select(*ID))
        .unionByName(shared_edges.select(*ID))
        .distinct()
    )
    first_seen = F.least("observed_first_seen_ts", "existing_first_seen_ts").alias("first_seen_ts")
    involved_keys = known.join(touched, ID, "left_semi").select("existing_key").distinct()
    persons = known.join(involved_keys, "existing_key", "left_semi")

    nodes = (
        touched.unionByName(persons.select(*ID))
        .distinct()
        .join(observed_first_seen, ID, "left")
        .join(persons, ID, "left")
        .select(
            *ID,
            identity_node(F.col("namespace"), F.col("source_customer_id")).alias("node"),
            "existing_key",
            "existing_first_seen_ts",
            first_seen,
        )
        # Read three times (label start, key assignment, the identities outside it): materialise it once.
        .localCheckpoint(eager=True)
    )
    attribute_groups = fresh_edges.unionByName(shared_edges).select(
        identity_node(F.col("namespace"), F.col("source_customer_id")).alias("node"),
        F.concat(F.col("attribute"), F.lit(":"), F.col("value")).alias("group"),
    )
    # Every identity of an involved person is a node with its existing key (and no other node has one):
    # the persons are read from the materialised nodes, not from customer_identity again.
    person_nodes = nodes.where(F.col("existing_key").isNotNull())
    key_groups = person_nodes.select(
        "node", F.concat(F.lit(f"{KEY_GROUP}:"), F.col("existing_key")).alias("group")
    )
    labels, iterations = connected_labels(
        nodes.select("node"),
        attribute_groups.unionByName(key_groups),
        max_iterations,
        checkpoint_every,
        driver_graph_max_rows,
    )

    labelled = nodes.join(labels, "node")
    key_age = person_nodes.groupBy("existing_key").agg(
        F.min("existing_first_seen_ts").alias("key_first_seen_ts")
    )
    oldest_first = Window.partitionBy("label").orderBy(
        F.col("key_first_seen_ts").asc_nulls_last(), F.col("existing_key")
    )
    component_keys = (
        labelled.where(F.col("existing_key").isNotNull())
        .select("label", "existing_key")
        .distinct()
        .join(key_age, "existing_key")
        .withColumn("age_rank", F.row_number().over(oldest_first))
    )
    survivors = component_keys.where(F.col("age_rank") == 1).select(
        "label", F.col("existing_key").alias("surviving_key")
    )
    merges = (
        component_keys.where(F.col("age_rank") > 1)
        .join(survivors, "label")
        .select(
            F.col("existing_key").alias("merged_key"),
            "surviving_key",
            F.lit(run_id).alias("run_id"),
            F.lit(run_ts).cast(TimestampType()).alias("merged_at"),
        )
    )
    assigned = labelled.join(survivors, "label", "left").withColumn(
        "customer_key", F.coalesce(F.col("surviving_key"), new_customer_key(F.col("label")))
    )
    # Identities seen again with nothing new are outside the graph: their person is unchanged, so they keep
    # their key; only a late sighting can move their first-seen time.
    seen_again = (
        observed_first_seen.join(known, ID)
        .join(nodes.select(*ID), ID, "left_anti")
        .select(
            *ID,
            "existing_key",
            "existing_first_seen_ts",
            first_seen,
            F.col("existing_key").alias("customer_key"),
        )
    )
    assigned = assigned.select(*seen_again.columns).unionByName(seen_again)
    changed = (
        F.col("existing_key").isNull()
        | (F.col("existing_key") != F.col("customer_key"))
        | ~F.col("existing_first_seen_ts").eqNullSafe(F.col("first_seen_ts"))
    )
    identity = assigned.where(changed).select(
        F.col("namespace").alias("channel"),
        "source_customer_id",
        "customer_key",
        "first_seen_ts",
        F.lit(run_id).alias("updated_run_id"),
    )
    return IdentityResult(
        identity=identity,
        edges=fresh_edges.select(*SILVER["identity_edges"].fieldNames()),
        merges=merges,
        assignments=assigned.select(*ID, "customer_key"),
        iterations=iterations,
    )


# ---------------------------------------------------------------- persons -> golden records


def _latest(column: str) -> Column:
    """The non-null value of the newest fact (new observations before existing rows, survivor before merged)."""
    return F.max(F.when(F.col(column).isNotNull(), F.struct("priority", "ts", column)))[column]


def golden_customers(
    assignments: DataFrame,
    observations: DataFrame,
    existing_customers: DataFrame | None,
    merges: DataFrame,
    run_id: str,
) -> DataFrame:
    """silver.customers rows that are new or changed for every person this run touched (SILVER['customers']).

    `assignments` is IdentityResult.assignments (every identity the run touched, changed or not). Each
    person's row folds this run's observations into its existing row and the existing rows of the keys
    merged into it: member id and phone/email hashes are the latest known (this run's observations by time,
    then the existing row), first channel/time the earliest, channels seen the sorted union, city the CRM
    city when there is one, else the latest. is_identified is false only for a person made of anonymous
    app devices alone. Rows identical to the existing ones (but for the run id) are left out.
    Merged-away keys are not in the result: delete `retired_customer_keys(merges)` from silver.customers.
    """
    spark = observations.sparkSession
    existing_customers = (
        existing_customers if existing_customers is not None else _empty(spark, SILVER["customers"])
    )
    fact_columns = [
        "customer_key",
        "priority",
        "ts",
        "member_id",
        "phone_hash",
        "email_hash",
        "crm_city",
        "city",
        "first_channel",
        "channels",
        "is_member",
        "is_identified",
    ]
    new_facts = observations.join(assignments, ID).select(
        "customer_key",
        F.lit(2).alias("priority"),
        F.col("seen_ts").alias("ts"),
        "member_id",
        "phone_hash",
        "email_hash",
        F.when(F.col("namespace") == MEMBER, F.col("city")).alias("crm_city"),
        "city",
        F.col("channel").alias("first_channel"),
        F.array("channel").alias("channels"),
        F.col("member_id").isNotNull().alias("is_member"),
        "is_identified",
    )
    affected = assignments.select("customer_key").distinct()
    kept = existing_customers.join(affected, "customer_key", "left_semi").withColumn("priority", F.lit(1))
    folded = (
        existing_customers.join(
            merges.select("merged_key", "surviving_key"), F.col("customer_key") == F.col("merged_key")
        )
        .withColumn("customer_key", F.col("surviving_key"))
        .withColumn("priority", F.lit(0))
    )
    existing_facts = kept.unionByName(folded.select(*kept.columns)).select(
        "customer_key",
        "priority",
        F.col("first_seen_ts").alias("ts"),
        "member_id",
        "phone_hash",
        "email_hash",
        F.col("city").alias("crm_city"),  # the stored city is already the preferred one
        "city",
        "first_channel",
        F.col("channels_seen").alias("channels"),
        "is_member",
        "is_identified",
    )
    facts = new_facts.select(*fact_columns).unionByName(existing_facts.select(*fact_columns))
    earliest = F.min(F.when(F.col("ts").isNotNull(), F.struct("ts", "first_channel")))
    golden = facts.groupBy("customer_key").agg(
        _latest("member_id").alias("member_id"),
        _latest("phone_hash").alias("phone_hash"),
        _latest("email_hash").alias("email_hash"),
        F.coalesce(earliest["first_channel"], F.min("first_channel")).alias("first_channel"),
        earliest["ts"].alias("first_seen_ts"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list(F.coalesce("channels", F.array()))))).alias(
            "channels_seen"
        ),
        F.bool_or("is_member").alias("is_member"),
        F.bool_or("is_identified").alias("is_identified"),
        F.coalesce(_latest("crm_city"), _latest("city")).alias("city"),
    )
    golden = golden.withColumn("is_member", F.col("is_member") | F.col("member_id").isNotNull())
    compared = [c for c in SILVER["customers"].fieldNames() if c not in ("customer_key", "updated_run_id")]
    before = existing_customers.select(
        "customer_key", F.lit(True).alias("existed"), *[F.col(c).alias(f"before_{c}") for c in compared]
    )
    differs = F.col("existed").isNull()
    for column in compared:
        differs = differs | ~F.col(column).eqNullSafe(F.col(f"before_{column}"))
    return (
        golden.join(before, "customer_key", "left")
        .where(differs)
        .withColumn("updated_run_id", F.lit(run_id))
        .select(*[F.col(f.name).cast(f.dataType) for f in SILVER["customers"].fields])
    )


def retired_customer_keys(merges: DataFrame) -> DataFrame:
    """(customer_key) of persons merged into another this run: the rows to delete from silver.customers."""
    return merges.select(F.col("merged_key").alias("customer_key")).distinct()


def customer_key_lookup(identity: DataFrame) -> DataFrame:
    """(namespace, source_customer_id, customer_key) from silver.customer_identity, for joining facts to persons."""
    return identity.select(F.col("channel").alias("namespace"), "source_customer_id", "customer_key")
