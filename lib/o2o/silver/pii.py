"""PII handling: canonical phone and email, salted SHA-256 hashes; raw values never leave bronze."""

from __future__ import annotations

import os

import pyspark.sql.functions as F
from pyspark.sql import Column

from o2o.config import Config
from o2o.errors import UsageError

DEV_SALT = "o2o-dev-only-salt-NOT-FOR-PRODUCTION"


class MissingSalt(UsageError, RuntimeError):
    """No PII salt in the environment where one is required."""


def pii_salt(cfg: Config) -> str:
    """The salt from the environment; the named dev salt only where the env allows it (local)."""
    salt = os.environ.get(cfg.silver.pii_salt_env, "")
    if salt:
        return salt
    if cfg.silver.dev_salt_allowed:
        return DEV_SALT
    raise MissingSalt(
        f"environment variable {cfg.silver.pii_salt_env} is not set; env '{cfg.env}' needs a secret salt "
        f"to hash phone numbers and emails (set it from your secret store, e.g. export {cfg.silver.pii_salt_env}=...)"
    )


def canonical_phone(phone: Column, default_country_code: str) -> Column:
    """E.164 form (+<country><number>) of a phone typed in any common way; null when too short to be one.

    '138-1234-5678', '(+86) 138 1234 5678', '0086 13812345678' and '8613812345678' all become '+8613812345678'.
    Rules in order: a leading '+' keeps the number as typed; '00' is the international prefix; <cc> plus 11
    digits already holds the country code; a leading '0' is the national trunk prefix; anything else is a
    national number of the default country.
    """
    cc = default_country_code
    # One chain of rewrites, each applied to the previous result: every step references its input once, so
    # the expression stays linear (nested CASE branches over the same digits made Spark's generated code
    # grow past the JVM's 64 KB method limit wherever the hash was used twice in a row).
    kept = F.regexp_replace(phone, r"[^0-9+]", "")
    e164 = F.regexp_replace(kept, r"(?<!^)\+", "")
    e164 = F.regexp_replace(e164, r"^00", "+")
    e164 = F.regexp_replace(e164, rf"^({cc}[0-9]{{11}})$", "+$1")
    e164 = F.regexp_replace(e164, r"^0", f"+{cc}")
    e164 = F.regexp_replace(e164, r"^([0-9])", f"+{cc}$1")
    return F.when(F.length(F.regexp_replace(kept, r"\+", "")) >= 7, e164)


def canonical_email(email: Column) -> Column:
    """Trimmed lower-case email; null unless it looks like local@domain.tld."""
    cleaned = F.lower(F.trim(email))
    return F.when(cleaned.rlike(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), cleaned)


def salted_hash(value: Column, salt: str) -> Column:
    """Hex SHA-256 of salt|value; null stays null."""
    return F.when(value.isNotNull(), F.sha2(F.concat(F.lit(salt), F.lit("|"), value), 256))


def phone_hash(phone: Column, salt: str, default_country_code: str) -> Column:
    """Salted hash of the canonical phone; null when the text is not a phone."""
    return salted_hash(canonical_phone(phone, default_country_code), salt)
