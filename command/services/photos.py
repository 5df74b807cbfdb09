"""Photos: checked by content, re-encoded without metadata (EXIF and its GPS tags included),
thumbnailed, and stored once per report (or per incident, for resolution photos).

``photo_prepare`` does the slow, pure part (decoding, re-encoding) outside any transaction;
``photos_attach`` writes the rows and files inside the caller's transaction and removes the
files again if that transaction rolls back.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from command.models import Incident, Report, ReportPhoto
from command.resident_models import StoredPhoto

# Formats accepted, by what the bytes are (Pillow's detection), never by file name or header.
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def photo_max_bytes() -> int:
    return _setting("PHOTO_MAX_BYTES", 10 * 1024 * 1024)


def photo_max_pixels() -> int:
    return _setting("PHOTO_MAX_PIXELS", 40_000_000)


def photo_max_count() -> int:
    return _setting("PHOTO_MAX_COUNT", 6)


@dataclass(frozen=True)
class PreparedPhoto:
    sha256: str  # of the bytes as uploaded: the same photo sent twice has the same hash
    image: bytes  # re-encoded JPEG, no metadata
    thumbnail: bytes  # JPEG, longest side settings.PHOTO_THUMBNAIL_SIZE
    width: int
    height: int


def _read(upload: Any) -> bytes:
    if isinstance(upload, bytes):
        return upload
    stream: IO[bytes] = upload
    if hasattr(stream, "seek"):
        stream.seek(0)
    limit = photo_max_bytes()
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValidationError(
            _("The photo is larger than %(mb).0f MB.") % {"mb": limit / 1024 / 1024}, code="photo_too_large"
        )
    return bytes(data)


def _encode_jpeg(image: Image.Image, *, quality: int) -> bytes:
    out = io.BytesIO()
    # No exif=, icc_profile=, xmp= or comment=, and an empty ``info`` (photo_prepare): only the
    # pixels are written (the JFIF header, tables and scan).
    image.info = {}
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def photo_prepare(upload: Any, *, name: str = "") -> PreparedPhoto:
    """Check one uploaded photo (an UploadedFile, a binary stream or bytes) and re-encode it."""
    label = name or _("photo")
    data = _read(upload)
    if not data:
        raise ValidationError(_("%(name)s is empty.") % {"name": label}, code="photo_empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            fmt = probe.format
            width, height = probe.size
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        ValueError,  # e.g. a PNG text chunk that inflates past Pillow's limit ("Decompressed Data Too Large")
        SyntaxError,
    ) as exc:
        raise ValidationError(
            _("%(name)s is not a supported image: send a JPEG, PNG or WebP photo.") % {"name": label},
            code="photo_unsupported",
        ) from exc
    if fmt not in ACCEPTED_FORMATS:
        raise ValidationError(
            _("%(name)s is a %(format)s image; only JPEG, PNG and WebP are accepted.")
            % {"name": label, "format": fmt or "?"},
            code="photo_unsupported",
        )
    if width * height > photo_max_pixels() or width <= 0 or height <= 0:
        raise ValidationError(
            _("%(name)s has %(mp).1f megapixels; at most %(max).0f are accepted.")
            % {"name": label, "mp": width * height / 1e6, "max": photo_max_pixels() / 1e6},
            code="photo_too_many_pixels",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            image.load()
            # Apply the EXIF orientation to the pixels, since the EXIF block is dropped.
            image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValidationError(
            _("%(name)s could not be decoded; the file may be damaged.") % {"name": label}, code="photo_unsupported"
        ) from exc
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        image = background
    elif image.mode != "RGB":
        image = image.convert("RGB")
    # Nothing of the original's metadata goes on: Pillow carries ``info`` (JPEG comment, XMP,
    # ICC profile, EXIF, PNG text, DPI ...) through convert/copy and writes some of it back
    # (the JPEG comment) when saving.
    image.info = {}
    longest = _setting("PHOTO_MAX_SIDE", 2560)
    if max(image.size) > longest:
        image.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    encoded = _encode_jpeg(image, quality=85)
    thumb = image.copy()
    size = _setting("PHOTO_THUMBNAIL_SIZE", 320)
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    return PreparedPhoto(
        sha256=hashlib.sha256(data).hexdigest(),
        image=encoded,
        thumbnail=_encode_jpeg(thumb, quality=75),
        width=image.size[0],
        height=image.size[1],
    )


def photos_prepare(uploads: Sequence[Any]) -> list[PreparedPhoto]:
    """Check a set of uploads; duplicates within the set are kept once."""
    if len(uploads) > photo_max_count():
        raise ValidationError(
            {"photos": _("At most %(count)s photos per report.") % {"count": photo_max_count()}},
            code="too_many_photos",
        )
    prepared: dict[str, PreparedPhoto] = {}
    errors: list[str] = []
    for index, upload in enumerate(uploads):
        try:
            photo = photo_prepare(upload, name=getattr(upload, "name", "") or _("photo %(n)s") % {"n": index + 1})
        except ValidationError as exc:
            errors.extend(exc.messages)
            continue
        prepared.setdefault(photo.sha256, photo)
    if errors:
        raise ValidationError({"photos": errors})
    return list(prepared.values())


def _delete_files(names: Iterable[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        with contextlib.suppress(OSError):  # best effort clean-up of an orphan file
            default_storage.delete(name)


def photos_attach(
    *, photos: Sequence[PreparedPhoto], report: Report | None = None, incident: Incident | None = None
) -> list[ReportPhoto]:
    """Store photos for a report or an incident inside the current transaction. A photo
    already stored for the same owner (same hash) is not stored again."""
    if (report is None) == (incident is None):
        raise ValueError("attach photos to exactly one of report or incident")
    if not photos:
        return []
    owner_filter: dict[str, Any] = {"report": report} if report is not None else {"incident": incident}
    if report is None:
        owner_filter["report__isnull"] = True
    known = set(
        ReportPhoto.objects.filter(**owner_filter, sha256__in=[p.sha256 for p in photos]).values_list(
            "sha256", flat=True
        )
    )
    stored: list[ReportPhoto] = []
    written: list[str] = []
    try:
        for photo in photos:
            if photo.sha256 in known:
                continue
            row = ReportPhoto(
                report=report,
                incident=incident if report is None else None,
                sha256=photo.sha256,
                width=photo.width,
                height=photo.height,
            )
            row.image.save(f"{photo.sha256[:24]}.jpg", ContentFile(photo.image), save=False)
            written.append(row.image.name)
            row.thumbnail.save(f"{photo.sha256[:24]}-thumb.jpg", ContentFile(photo.thumbnail), save=False)
            written.append(row.thumbnail.name)
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
            except IntegrityError:  # the same photo stored meanwhile by a concurrent retry
                _delete_files(written[-2:])
                del written[-2:]
                continue
            stored.append(row)
    except BaseException:
        _delete_files(written)
        raise
    return stored


def photo_rows_store(
    model: type[StoredPhoto], owner: dict[str, Any], photos: Sequence[PreparedPhoto], written: list[str]
) -> list[StoredPhoto]:
    """Store prepared photos as rows of ``model`` (a StoredPhoto: a request's, a notice's) for
    ``owner`` (``{"notice": notice}``) inside the caller's transaction; a photo already stored for
    that owner is not stored again. The files' names go to ``written``: the caller deletes them
    (photo_files_delete) when its transaction does not commit."""
    rows: Any = model._default_manager
    known = set(rows.filter(**owner, sha256__in=[p.sha256 for p in photos]).values_list("sha256", flat=True))
    stored: list[StoredPhoto] = []
    for photo in photos:
        if photo.sha256 in known:
            continue
        row = model(**owner, sha256=photo.sha256, width=photo.width, height=photo.height)
        row.image.save(f"{photo.sha256[:24]}.jpg", ContentFile(photo.image), save=False)
        written.append(row.image.name)
        row.thumbnail.save(f"{photo.sha256[:24]}-thumb.jpg", ContentFile(photo.thumbnail), save=False)
        written.append(row.thumbnail.name)
        row.save(force_insert=True)
        known.add(photo.sha256)
        stored.append(row)
    return stored


def photo_files(rows: Iterable[ReportPhoto]) -> list[str]:
    """The storage names of the rows' files (for clean-up when their transaction rolls back)."""
    return [name for row in rows for name in (row.image.name, row.thumbnail.name) if name]


def photo_files_delete(names: Iterable[str]) -> None:
    """Files are not transactional: the caller deletes them when the transaction that wrote
    their rows did not commit."""
    _delete_files(names)
