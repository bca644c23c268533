"""schemathesis hooks for the Profiles API, loaded by `.ci/run`'s fuzz step
(SCHEMATHESIS_HOOKS=hooks, run from this folder's parent path). Each says what a schema
cannot, and why; nothing here hides a failure of the server."""

import datetime
import re

import hypothesis.internal.lambda_sources as lambda_sources
import schemathesis
from hypothesis import strategies as st

# Hypothesis names a strategy built with a lambda by parsing the lambda's source; for the
# lambdas of schemathesis' large coverage module that parse fails on CPython 3.11 with
# "SystemError: AST constructor recursion depth mismatch" (CPython issue 106905), which the
# run reports as a runtime error of whole operations. The name only labels a strategy, so an
# unknown one is given instead; nothing generated or checked changes.
_describe = lambda_sources._lambda_description


def _describe_or_unknown(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except (SystemError, RecursionError):
        return "lambda: <unknown>"


lambda_sources._lambda_description = _describe_or_unknown

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

# A country code must be on the ISO 3166-1 list, which a pattern of three digits cannot say.
schemathesis.openapi.format(
    "iso3166-numeric",
    st.sampled_from(["840", "276", "250", "826", "392", "036", "124", "076", "356", "710"]),
)


@schemathesis.hook
def filter_query(ctx, query):
    # A list cursor is valid only as the server sealed it (an HMAC over the tenant, the key
    # and the query), so a generated one is always refused with a 400: generated cases carry
    # none. tests/api/listing.rs covers altered, foreign and reused cursors.
    if not query:
        return True
    if "cursor" in query:
        return False
    # A prefix search reads its own index in its own order, which a schema of independent
    # parameters cannot say: the two prefixes together, an email prefix with any sort_by, or
    # a name prefix with a sort_by other than name are 400s (tests/api/search.rs covers
    # them).
    name, email = "filter[name_prefix]" in query, "filter[email_prefix]" in query
    sort = query.get("sort_by")
    if name and email:
        return False
    if email and sort is not None:
        return False
    return not (name and sort not in (None, "name"))


# fullmatch, not `$` (which also matches before a final line break), and [0-9], not \d
# (which also matches other scripts' digits): the server's rules exactly.
KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DATE = re.compile(r"([0-9]{4})-([0-9]{2})(?:-([0-9]{2}))?")


def _date(text):
    """A partial date as the server reads it (YYYY-MM or YYYY-MM-DD, a real day), or None."""
    m = DATE.fullmatch(text) if isinstance(text, str) else None
    if not m:
        return None
    year, month, day = int(m[1]), int(m[2]), int(m[3] or 1)
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _normal(key, value):
    """A contact's value as the server compares it."""
    if key == "phone":
        return (key, "".join(ch for ch in value if ch.isdigit()))
    local, _, domain = value.strip().rpartition("@")
    return (key, f"{local}@{domain.lower()}")


@schemathesis.hook
def filter_body(ctx, body):
    # What OpenAPI 3.0 cannot state about a profile body, and the server checks:
    # custom_properties keys (3.0 has no propertyNames; the document gives x-key-pattern),
    # dates that exist on the calendar, and an end_date not before its start_date. Bodies
    # that break them are left out rather than reported as valid requests refused; the
    # validators' own tests cover these rules (shared/src/validate).
    if not isinstance(body, dict):
        return True
    # A contact patch's value without its key is of the stored contact's kind (email or
    # phone), which the request does not show: no schema can say whether it is valid.
    if ctx.operation.label.startswith("PATCH /profiles/{profile_id}/contacts/"):
        if "value" in body and "key" not in body:
            return False
    # Initial contacts must differ by normalised value (a phone in E.164, an email with its
    # domain lower-cased), which uniqueItems (exact JSON equality) cannot say.
    contacts = body.get("contacts")
    if isinstance(contacts, list):
        seen = set()
        for c in contacts:
            if isinstance(c, dict) and isinstance(c.get("value"), str):
                normal = _normal(c.get("key"), c["value"])
                if normal in seen:
                    return False
                seen.add(normal)
    props = body.get("custom_properties")
    if isinstance(props, dict) and not all(KEY.fullmatch(k) for k in props):
        return False
    for field in ("work_experiences", "education"):
        items = body.get(field)
        # Negative cases may send anything here: only lists of objects have dates to check.
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            start, end = item.get("start_date"), item.get("end_date")
            parsed = [(_date(d), d) for d in (start, end) if d is not None]
            if any(p is None for p, _ in parsed):
                return False
            if start is not None and end is not None and _date(end) < _date(start):
                return False
    return True
