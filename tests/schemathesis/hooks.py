"""schemathesis hooks for the Profiles API, loaded by `.ci/run`'s fuzz step
(SCHEMATHESIS_HOOKS=hooks, run from this folder's parent path). Each says what a schema
cannot, and why; nothing here hides a failure of the server."""

import datetime
import re

import schemathesis
from hypothesis import strategies as st

# A phone number must be valid for its country by libphonenumber's metadata, which no
# pattern can state: positive cases draw from numbers valid in several plans and spellings.
schemathesis.openapi.format(
    "phone",
    st.sampled_from(
        [
            "+14155552671",
            "+1 (415) 555-2671",
            "+1.415.555.2671",
            "tel:+1-415-555-2671",
            "+49 6582 45684",
            "+33 1 42 68 53 00",
            "+81 3-1234-5678",
        ]
    ),
)


@schemathesis.hook
def filter_query(ctx, query):
    # A list cursor is valid only as the server sealed it (an HMAC over the tenant, the key
    # and the query), so a generated one is always refused with a 400: generated cases carry
    # none. tests/api/listing.rs covers altered, foreign and reused cursors.
    return not query or "cursor" not in query


KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DATE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


def _date(text):
    """A partial date as the server reads it (YYYY-MM or YYYY-MM-DD, a real day), or None."""
    m = DATE.match(text) if isinstance(text, str) else None
    if not m:
        return None
    year, month, day = int(m[1]), int(m[2]), int(m[3] or 1)
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


@schemathesis.hook
def filter_body(ctx, body):
    # What OpenAPI 3.0 cannot state about a profile body, and the server checks:
    # custom_properties keys (3.0 has no propertyNames; the document gives x-key-pattern),
    # dates that exist on the calendar, and an end_date not before its start_date. Bodies
    # that break them are left out rather than reported as valid requests refused; the
    # validators' own tests cover these rules (shared/src/validate).
    if not isinstance(body, dict):
        return True
    props = body.get("custom_properties")
    if isinstance(props, dict) and not all(KEY.match(k) for k in props):
        return False
    for field in ("work_experiences", "education"):
        for item in body.get(field) or []:
            if not isinstance(item, dict):
                continue
            start, end = item.get("start_date"), item.get("end_date")
            parsed = [(_date(d), d) for d in (start, end) if d is not None]
            if any(p is None for p, _ in parsed):
                return False
            if start is not None and end is not None and _date(end) < _date(start):
                return False
    return True
