"""Checks an uploaded file by what it contains, never by its name or the type the client claims."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from aftersales.core.errors import ValidationFailed

ALLOWED_TYPES = ("image/jpeg", "image/png", "image/webp", "application/pdf")


@dataclass(frozen=True)
class CheckedFile:
    content: bytes
    content_type: str
    sha256: str
    extension: str


def sniff_content_type(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "application/pdf": "pdf"}
_PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


def check_upload(content: bytes) -> CheckedFile:
    limit = settings.AFTERSALES_MAX_ATTACHMENT_BYTES
    if len(content) == 0:
        raise ValidationFailed("the file is empty", field="file", code="file_empty")
    if len(content) > limit:
        raise ValidationFailed(
            "the file is too large", field="file", code="file_too_large", details={"max_bytes": limit, "size": len(content)}
        )
    content_type = sniff_content_type(content[:16])
    if content_type is None:
        raise ValidationFailed(
            "only JPEG, PNG, WebP and PDF files are accepted", field="file", code="file_type_not_allowed",
            details={"allowed": list(ALLOWED_TYPES)},
        )
    if content_type in _PIL_FORMATS:
        # A valid header on a file that is not really that image (a script with a PNG signature) fails here.
        try:
            with Image.open(io.BytesIO(content)) as image:
                if image.format != _PIL_FORMATS[content_type]:
                    raise ValidationFailed("the image is damaged", field="file", code="file_corrupt")
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ValidationFailed("the image is damaged", field="file", code="file_corrupt") from exc
    elif b"%%EOF" not in content[-1024:]:
        raise ValidationFailed("the PDF is damaged", field="file", code="file_corrupt")
    return CheckedFile(
        content=content, content_type=content_type, sha256=hashlib.sha256(content).hexdigest(),
        extension=_EXTENSIONS[content_type],
    )
