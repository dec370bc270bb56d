"""redact: the signature, security token and credential of a presigned URL never leave the
process in text; everything else in the text is left as it was."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkimg.redact import redact_url

BASE = "https://bucket.s3.eu-west-1.amazonaws.com/sorted-media/11/1102192-1a-101.jpg"
CREDENTIAL = "AKIAEXAMPLE%2F20261204%2Feu-west-1%2Fs3%2Faws4_request"
SIGNATURE = "3f1c9a2b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE%2B%2Fabc%3D%3D"


def presigned(signature: str = SIGNATURE, token: str | None = None) -> str:
    query = (
        f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={CREDENTIAL}"
        "&X-Amz-Date=20261204T042000Z&X-Amz-Expires=86400"
    )
    if token is not None:
        query += f"&X-Amz-Security-Token={token}"
    return f"{BASE}?{query}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"


def test_a_sigv4_presigned_url_keeps_everything_but_its_credential_and_signature() -> None:
    assert redact_url(presigned()) == (
        f"{BASE}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED"
        "&X-Amz-Date=20261204T042000Z&X-Amz-Expires=86400"
        "&X-Amz-SignedHeaders=host&X-Amz-Signature=REDACTED"
    )


def test_the_security_token_of_temporary_credentials_is_hidden_too() -> None:
    redacted = redact_url(presigned(token=TOKEN))
    assert "&X-Amz-Security-Token=REDACTED&" in redacted
    for secret in (TOKEN, "IQoJb3JpZ2lu", SIGNATURE, "AKIAEXAMPLE"):
        assert secret not in redacted


def test_url_encoded_values_are_hidden_whole_not_up_to_their_first_escape() -> None:
    redacted = redact_url(presigned(token=TOKEN))
    assert "%2F" not in redacted and "%2B" not in redacted and "%3D" not in redacted


def test_parameter_names_match_in_any_case() -> None:
    text = f"{BASE}?x-amz-signature=abc123&X-AMZ-CREDENTIAL=AKIAX%2Fy"
    assert redact_url(text) == f"{BASE}?x-amz-signature=REDACTED&X-AMZ-CREDENTIAL=REDACTED"


def test_google_and_legacy_signature_parameters_are_hidden() -> None:
    text = "https://s.test/k?X-Goog-Signature=ffee&X-Goog-Credential=sa%40p&Signature=legacy"
    assert redact_url(text) == (
        "https://s.test/k?X-Goog-Signature=REDACTED&X-Goog-Credential=REDACTED&Signature=REDACTED"
    )


def test_every_url_of_a_text_is_redacted_and_the_words_between_them_are_kept() -> None:
    text = (
        f"Image could not be downloaded: {presigned(signature='aaaa1111')}\n"
        f'retry of "{presigned(signature="bbbb2222", token="tok")}" failed'
    )
    redacted = redact_url(text)
    assert redacted.count("X-Amz-Signature=REDACTED") == 2
    assert redacted.count("X-Amz-Credential=REDACTED") == 2
    assert "X-Amz-Security-Token=REDACTED" in redacted
    for secret in ("aaaa1111", "bbbb2222", "tok&", "AKIAEXAMPLE"):
        assert secret not in redacted
    assert redacted.startswith("Image could not be downloaded: https://bucket.s3.")
    assert redacted.endswith('host&X-Amz-Signature=REDACTED" failed')


def test_a_value_ends_at_a_quote_or_whitespace_so_json_and_prose_around_it_survive() -> None:
    text = (
        "{\"url\": \"https://s.test/k?X-Amz-Signature=abc\", 'u': 'https://s.test/k?Signature=d'}"
    )
    assert redact_url(text) == (
        '{"url": "https://s.test/k?X-Amz-Signature=REDACTED",'
        " 'u': 'https://s.test/k?Signature=REDACTED'}"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "HTTP 403 Forbidden: AccessDenied",
        "https://cdn.shopify.com/s/files/1/0001/files/1102192-1a-101.jpg?v=1712345678",
        "productSet failed for handle signature-bag (Signature collection)",
        "X-Amz-SignedHeaders=host&X-Amz-Date=20261204T042000Z",
    ],
)
def test_text_without_a_signed_parameter_is_unchanged(text: str) -> None:
    assert redact_url(text) == text


def test_a_presigned_url_quoted_percent_encoded_inside_another_url_loses_its_secrets() -> None:
    inner = presigned(signature="cafe0123").replace("?", "%3F").replace("&", "%26")
    text = "https://sandbox.test/fetch?src=" + inner.replace("=", "%3D")
    redacted = redact_url(text)
    assert "cafe0123" not in redacted and "AKIAEXAMPLE" not in redacted


# Any value a query parameter can carry up to its end: no whitespace, control or separator
# character, no `&` (the next parameter) and no quote (the end of a quoted URL).
VALUES = st.text(
    st.characters(blacklist_categories=("Z", "C"), blacklist_characters="&\"'"), min_size=1
)


@given(signature=VALUES, token=VALUES)
def test_no_generated_signature_or_token_value_survives_redaction(
    signature: str, token: str
) -> None:
    text = f"{BASE}?X-Amz-Security-Token={token}&X-Amz-Signature={signature}"
    redacted = redact_url(f"failed: {text} (HTTP 403)")
    assert redacted == (
        f"failed: {BASE}?X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED (HTTP 403)"
    )
