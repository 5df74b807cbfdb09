"""Issue 18: an upload's metadata never survives the re-encoding, in the photo or its thumbnail:
JPEG comment (COM), EXIF (with GPS), XMP, ICC profile, IPTC (APP13); PNG text chunks (tEXt,
zTXt, iTXt), EXIF and ICC; WebP EXIF, XMP and ICC. Checked on the bytes: only the JPEG segments
that carry pixels (and the JFIF header) are written."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from command.services.photos import photo_prepare

SECRET = b"SECRET-METADATA"
# SOI, APP0 (JFIF), DQT, SOF0/SOF2, DHT, DRI, SOS, EOI
PIXEL_MARKERS = {0xD8, 0xE0, 0xDB, 0xC0, 0xC2, 0xC4, 0xDD, 0xDA, 0xD9}


def jpeg_markers(data: bytes) -> list[int]:
    """The segment markers of a baseline/progressive JPEG, up to the first scan."""
    assert data[:2] == b"\xff\xd8"
    markers, i = [0xD8], 2
    while i < len(data):
        assert data[i] == 0xFF, f"not a marker at {i}"
        marker = data[i + 1]
        markers.append(marker)
        if marker == 0xDA:  # the scan: entropy-coded data follows
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return markers


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = SECRET.decode()  # ImageDescription
    exif[0x013B] = "SECRET-METADATA artist"  # Artist
    gps = {1: "N", 2: (39.0, 0.0, 30.0), 3: "E", 4: (117.0, 0.0, 5.0)}
    exif[0x8825] = gps
    return exif.tobytes()


def _image() -> Image.Image:
    return Image.new("RGB", (120, 80), (30, 120, 200))


def jpeg_with_everything() -> bytes:
    out = io.BytesIO()
    _image().save(
        out, "JPEG", comment=SECRET, exif=_exif(), icc_profile=SECRET * 4, xmp=b"<x:xmpmeta>" + SECRET + b"</x:xmpmeta>"
    )
    data = out.getvalue()
    iptc_payload = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00" + struct.pack(">I", len(SECRET) + 5) + b"\x1c\x02x\x00"
    iptc_payload += bytes([len(SECRET)]) + SECRET
    app13 = b"\xff\xed" + struct.pack(">H", len(iptc_payload) + 2) + iptc_payload
    return data[:2] + app13 + data[2:]


def png_with_everything() -> bytes:
    info = PngInfo()
    info.add_text("Comment", SECRET.decode())
    info.add_text("Author", SECRET.decode(), zip=True)  # zTXt
    info.add_itxt("Description", SECRET.decode(), lang="en", tkey="Description")
    out = io.BytesIO()
    _image().save(out, "PNG", pnginfo=info, exif=_exif(), icc_profile=SECRET * 4)
    return out.getvalue()


def webp_with_everything() -> bytes:
    out = io.BytesIO()
    _image().save(out, "WEBP", exif=_exif(), icc_profile=SECRET * 4, xmp=b"<x>" + SECRET + b"</x>")
    return out.getvalue()


@pytest.mark.parametrize("make", [jpeg_with_everything, png_with_everything, webp_with_everything])
def test_no_metadata_survives_in_the_photo_or_its_thumbnail(make) -> None:
    upload = make()
    assert SECRET in upload
    prepared = photo_prepare(upload)
    for data in (prepared.image, prepared.thumbnail):
        assert SECRET not in data
        assert b"Exif" not in data and b"ICC_PROFILE" not in data and b"http://ns.adobe.com" not in data
        assert set(jpeg_markers(data)) <= PIXEL_MARKERS, [hex(m) for m in jpeg_markers(data)]
        with Image.open(io.BytesIO(data)) as decoded:
            assert set(decoded.info) <= {
                "jfif",
                "jfif_version",
                "jfif_unit",
                "jfif_density",
                "dpi",
                "progressive",
                "progression",
            }
            assert not decoded.getexif()


def test_the_upload_did_carry_each_kind() -> None:
    """The fixtures above are what they claim (else the test above proves nothing)."""
    with Image.open(io.BytesIO(jpeg_with_everything())) as jpeg:
        assert jpeg.info["comment"] == SECRET
        assert jpeg.info.get("icc_profile") and jpeg.getexif()
        assert "xmp" in jpeg.info
        assert 0xED in jpeg_markers(jpeg_with_everything())
    with Image.open(io.BytesIO(png_with_everything())) as png:
        assert png.text["Comment"] == SECRET.decode() and png.text["Author"] == SECRET.decode()
        assert png.text["Description"] == SECRET.decode()
    with Image.open(io.BytesIO(webp_with_everything())) as webp:
        assert webp.info.get("icc_profile") and webp.info.get("exif") and webp.info.get("xmp")
