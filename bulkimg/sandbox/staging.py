"""Staged uploads of bulk mutation variables: the target ``stagedUploadsCreate`` returns, and the
multipart form POST that stores the file, checked like a storage service checks a signed policy.

The form must carry every returned parameter as a field, unchanged, and the ``file`` field last
(Shopify's imports guide: otherwise the upload fails); the file may not pass the size limit
(100 MB). The ``key`` parameter is the ``stagedUploadPath`` of bulkOperationRunMutation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from bulkimg.sandbox.config import SandboxConfig
from bulkimg.sandbox.gids import SHOP_NUMBER
from bulkimg.sandbox.signing import UrlSigner
from bulkimg.sandbox.store import Store

UPLOAD_PATH: Final = "/sandbox-storage/staged-uploads/"
_SIGNATURE_FIELD: Final = "x-goog-signature"
_POLICY_FIELD: Final = "policy"
_MAX_FIELD_BYTES: Final = 64 * 1024
_CHUNK: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class StagedTarget:
    url: str
    parameters: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class UploadResult:
    """201 with the stored key, or an error status with a storage-style code and message."""

    status: int
    code: str
    message: str
    key: str | None = None
    etag: str | None = None


def create_target(
    store: Store,
    signer: UrlSigner,
    config: SandboxConfig,
    base_url: str,
    filename: str,
    mime_type: str,
) -> StagedTarget:
    """A new upload target; its ``key`` parameter names the file once uploaded."""
    stored_as = str(uuid.uuid4())
    key = f"tmp/{SHOP_NUMBER}/bulk/{stored_as}/{filename}"
    store.create_staged(key, filename, mime_type, stored_as)
    now = datetime.now(UTC)
    fields = [
        ("Content-Type", mime_type),
        ("success_action_status", "201"),
        ("acl", "private"),
        ("key", key),
        ("x-goog-date", now.strftime("%Y%m%dT%H%M%SZ")),
        ("x-goog-credential", f"sandbox/{now:%Y%m%d}/auto/storage/goog4_request"),
        ("x-goog-algorithm", "GOOG4-HMAC-SHA256"),
    ]
    policy_doc = {
        "expiration": time.time() + config.staged_upload_lifetime,
        "max_bytes": config.staged_upload_max_bytes,
        "fields": dict(fields),
    }
    policy = base64.b64encode(json.dumps(policy_doc).encode()).decode()
    parameters = [*fields, (_POLICY_FIELD, policy), (_SIGNATURE_FIELD, signer.signature(policy))]
    return StagedTarget(base_url + UPLOAD_PATH, parameters)


class _Refused(Exception):  # noqa: N818 - carries the response
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.result = UploadResult(status, code, message)


def receive_upload(
    store: Store, signer: UrlSigner, body: IO[bytes], boundary: bytes
) -> UploadResult:
    """Store the file of a multipart form POST to the upload target."""
    part_dir = store.files_dir / "staged"
    temp = part_dir / f".upload-{uuid.uuid4()}"
    try:
        fields, size, digest = _read_form(body, boundary, temp, signer)
        key = fields["key"]
        staged = store.staged(key)
        if staged is None:
            raise _Refused(403, "AccessDenied", "The key does not name an upload target.")
        temp.replace(store.staged_path(staged.stored_as))  # atomic: a new file, a new inode
        store.mark_uploaded(key, size)
        return UploadResult(201, "Created", "", key=key, etag=digest)
    except _Refused as refused:
        _drain(body)
        return refused.result
    finally:
        temp.unlink(missing_ok=True)


def _read_form(
    body: IO[bytes], boundary: bytes, temp: Path, signer: UrlSigner
) -> tuple[dict[str, str], int, str]:
    """The form fields (all before the file), the file's size and MD5, the file saved at temp."""
    fields: dict[str, str] = {}
    limit: int | None = None
    size, md5 = 0, hashlib.md5()  # noqa: S324 - an ETag, not security
    current: str | None = None
    value = bytearray()
    file_seen = False
    rejected: _Refused | None = None
    with temp.open("wb") as out:
        for event in _events(body, boundary):
            if isinstance(event, Field):
                if file_seen:
                    raise _Refused(
                        400, "InvalidArgument", "The file field must be the last field of the form."
                    )
                current, value = event.name, bytearray()
            elif isinstance(event, File):
                if event.name != "file" or file_seen:
                    raise _Refused(400, "InvalidArgument", "The form holds one file field, `file`.")
                current, file_seen = None, True
                try:
                    limit = _check_policy(fields, signer)
                except _Refused as refused:
                    rejected = refused  # reported after the whole form is read: order errors first
            elif isinstance(event, Data) and current is not None:
                value.extend(event.data)
                if len(value) > _MAX_FIELD_BYTES:
                    raise _Refused(400, "InvalidArgument", f"Form field {current} is too large.")
                if not event.more_data:
                    fields[current] = value.decode("utf-8", "replace")
            elif isinstance(event, Data) and file_seen and rejected is None:
                size += len(event.data)
                if limit is not None and size > limit:
                    raise _Refused(
                        400,
                        "EntityTooLarge",
                        "Your proposed upload exceeds the maximum allowed size.",
                    )
                md5.update(event.data)
                out.write(event.data)
    if not file_seen:
        raise _Refused(400, "InvalidArgument", "The form has no `file` field.")
    if rejected is not None:
        raise rejected
    return fields, size, md5.hexdigest()


def _events(body: IO[bytes], boundary: bytes) -> Iterator[object]:
    decoder = MultipartDecoder(boundary)
    while True:
        chunk = body.read(_CHUNK)
        decoder.receive_data(chunk or None)
        while True:
            event = decoder.next_event()
            if isinstance(event, NeedData):
                break
            if isinstance(event, Epilogue):
                return
            yield event
        if not chunk:
            return


def _check_policy(fields: dict[str, str], signer: UrlSigner) -> int:
    """The size limit of a valid, unexpired policy whose every field is in the form."""
    policy = fields.get(_POLICY_FIELD)
    signature = fields.get(_SIGNATURE_FIELD)
    if not policy or not signature or signer.signature(policy) != signature:
        raise _Refused(403, "SignatureDoesNotMatch", "The policy signature does not match.")
    document = json.loads(base64.b64decode(policy))
    if float(document["expiration"]) < time.time():
        raise _Refused(400, "ExpiredToken", "The policy has expired.")
    for name, value in dict(document["fields"]).items():
        if fields.get(name) != value:
            raise _Refused(
                400, "InvalidPolicyDocument", f"The form must carry the field {name} unchanged."
            )
    return int(document["max_bytes"])


def _drain(body: IO[bytes]) -> None:
    """Read the rest of the request so the client sees the error instead of a reset."""
    while body.read(_CHUNK):
        pass
