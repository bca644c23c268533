"""schemathesis hooks for the Profiles API, loaded by `.ci/run`'s fuzz step
(SCHEMATHESIS_HOOKS=hooks, run from this folder's parent path). Each says what a schema
cannot, and why; nothing here hides a failure of the server."""

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
