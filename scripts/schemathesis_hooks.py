"""schemathesis hooks for scripts/schemathesis.sh (loaded through `hooks` in schemathesis.toml).

One hook, `filter_failure`, drops a "schema-valid request rejected" failure (ST202,
positive_data_acceptance) only when the server's problem document names a rule that OpenAPI 3.1
cannot state, listed below, or is the 422 of a reused Idempotency-Key, or the 413 of a body over
64 KiB. Each of those rules is written in the operation's or field's
description instead. Every other failure, and every other field error in the same answer, is kept:
an answer is dropped only if *all* its field errors are listed rules.
"""

import json

import schemathesis

# (method, path template or None for any, field or None for any, part of the server's message): the rules a
# JSON Schema cannot express, because they depend on the server's state or on another field.
RULES = [
    # Opaque cursors: only a `next_cursor` the server returned decodes (keyset pagination); a
    # schema cannot enumerate them, and schemathesis cannot take them from a previous response.
    (None, None, "cursor", "not a cursor returned by this API"),
    # Cross-field rules.
    ("GET", None, "to", "must not be before from"),
    ("GET", None, "to", "a report covers at most"),
    ("GET", "/api/v1/products", "max_price", "not below min_price"),
    ("GET", "/api/v1/products", "sort", "local needs a signed-in caller"),
    ("GET", "/api/v1/products", "sort", "relevance needs q"),
    ("GET", "/api/v1/products", None, "not combinable with updated_since"),
    ("GET", "/api/v1/products", "updated_since", "an RFC 3339 time from 1970-01-01T00:00:00Z"),
    ("POST", "/api/v1/checkouts", "delivery.address", "not used with pickup"),
    ("POST", "/api/v1/checkouts", None, "this product is in an earlier line already"),
    ("POST", "/api/v1/villages/{code}/aid-programmes", "network_id", "only with scope network"),
    ("POST", "/api/v1/villages/{code}/aid-programmes", "ends_on", "not before starts_on"),
    ("POST", "/api/v1/villages/{code}/shops", "bumdes_unit_id", "only for kind bumdes_unit"),
    # `not: {const: 0}` would say it, but utoipa 6 cannot emit `not`; the description does.
    ("POST", "/api/v1/products/{id}/stock-adjustments", "delta", "non-zero"),
    ("POST", "/api/v1/villages/{code}/bumdes", "partner_village_codes", "a BUMDes of kind desa"),
    (None, None, "discount.value", "an amount discount is at least 1 and less than price_idr"),
    (None, None, "discount.value", "a percent discount is 1 to 99"),
    ("POST", "/api/v1/checkouts", "delivery.address", "required for delivery"),
    ("POST", "/api/v1/villages/{code}/aid-programmes", "ends_on", "at most three years after"),
    # Rules on the server's state.
    ("PATCH", "/api/v1/products/{id}", "status", "product cannot become"),
    # Categories are data (GET /api/v1/categories), not a fixed enum of the schema.
    (None, None, "category", "unknown category; see GET /api/v1/categories"),
    ("POST", "/api/v1/me/password", "current_password", "is not your current password"),
    ("POST", "/api/v1/shops/{id}/operators", "phone", "no member of this village has this phone"),
    ("POST", "/api/v1/villages/{code}/aid-programmes", "ends_on", "not in the past"),
]


def _field_errors(response):
    try:
        doc = json.loads(response.content)
    except (TypeError, ValueError):
        return None
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not errors or not isinstance(errors, list):
        return None
    return errors


def _is_listed(method, path, error):
    field = error.get("field")
    message = error.get("message") or ""
    for r_method, r_path, r_field, r_message in RULES:
        if r_method not in (None, method) or r_path not in (None, path):
            continue
        if r_field not in (None, field):
            continue
        if r_message in message:
            return True
    return False


def _problem_type(response):
    try:
        doc = json.loads(response.content)
    except (TypeError, ValueError):
        return None
    return doc.get("type") if isinstance(doc, dict) else None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if getattr(failure, "code", None) != "ST202":
        return True
    # A reused Idempotency-Key: schemathesis draws header values on its own for each request and
    # repeats them (deterministic generation), so one key comes back with another operation or
    # body. 422 `idempotency-mismatch` is the documented answer (src/http/idempotency.rs); no
    # schema can say "a key not used before".
    if response.status_code == 422 and str(_problem_type(response)).endswith(
        "/idempotency-mismatch"
    ):
        return False
    # A body over 64 KiB: 413 is documented on every operation with a body; JSON Schema can bound
    # items and lengths but not the size of the serialized document.
    if response.status_code == 413:
        return False
    if response.status_code != 400:
        return True
    errors = _field_errors(response)
    if errors is None:
        return True
    method = case.operation.method.upper()
    path = case.operation.path
    return not all(_is_listed(method, path, e) for e in errors)
