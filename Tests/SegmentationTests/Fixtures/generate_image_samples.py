"""Writes the image-codec samples in Fixtures/images/ and their expected decodes.

Run from the package root (only on purpose; the tests read the committed files):

    python3 -m venv /tmp/venv-pil && /tmp/venv-pil/bin/pip install pillow numpy
    /tmp/venv-pil/bin/python Tests/SegmentationTests/Fixtures/generate_image_samples.py

PNGs are written byte by byte by the small encoder below, so every colour
type, bit depth, interlacing and chunk layout the decoder must handle is
there exactly (Pillow cannot write 16-bit RGB, 1/4-bit gray or interlaced
PNGs). Each PNG Pillow can read is read back and checked against its source
array, which checks this encoder. Expected values:

- PNG images: the source arrays, exact. Gray → RGB replicates; alpha is
  dropped; 16-bit keeps the high byte (libpng's strip_16, as Pillow's RGB;16B
  and OpenCV do); palettes give their colours; 1/2/4-bit gray is scaled to
  8 bits (v · 255 / (2^depth − 1)).
- PNG annotations: the raw gray value or palette index, exact; RGB, RGBA,
  gray+alpha and 16-bit are errors.
- JPEGs (written by Pillow): Pillow's own decode, `Image.convert("RGB")`
  (CMYK with Pillow's inverted-CMYK formula), compared with the tolerance
  `imageTolerance` (libjpeg versions and CMYK rounding may differ by a unit).
"""

import base64
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

OUT = Path(__file__).resolve().parent / "images"

# MARK: - Source arrays (13×7 for PNGs, 29×19 for JPEGs: odd, not a multiple of a JPEG block)


def pattern(width, height):
    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.stack([(xs * 19 + ys * 3) % 256, (ys * 37 + xs * 5) % 256, (xs * ys * 11 + 40) % 256], -1)
    gray = (xs * 17 + ys * 29) % 256
    alpha = (xs * 7 + ys * 13) * 3 % 256
    return xs, ys, rgb.astype(np.uint8), gray.astype(np.uint8), alpha.astype(np.uint8)


W, H = 13, 7
XS, YS, RGB, GRAY, ALPHA = pattern(W, H)
# 16-bit values whose low byte is large, so keeping the high byte (strip) and
# rounding v·255/65535 (scale) give different 8-bit results.
GRAY16 = GRAY.astype(np.uint16) * 256 + (200 + (XS + YS) % 56).astype(np.uint16)
RGB16 = RGB.astype(np.uint16) * 256 + (255 - (XS * 3 + YS) % 40).astype(np.uint16)[..., None]
# Class ids: blocks of 0, 1, 15 and 255 (ignore), plus a ramp of other ids.
IDS = np.select([XS < 3, XS < 6, XS < 9, YS < 2], [0, 1, 15, 255], (XS + YS * 13) % 21).astype(np.uint8)


def voc_palette():
    """The PASCAL VOC colour map (bit-interleaved class index → RGB)."""
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        r = g = b = 0
        c = index
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette[index] = (r, g, b)
    return palette


VOC = voc_palette()

# MARK: - A minimal PNG encoder


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """One row of samples (already flattened over channels) as bytes."""
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if depth == 8:
        return bytes(int(v) for v in samples)
    per_byte = 8 // depth
    out = bytearray()
    for start in range(0, len(samples), per_byte):
        byte = 0
        group = list(samples[start:start + per_byte])
        group += [0] * (per_byte - len(group))
        for value in group:
            byte = (byte << depth) | int(value)
        out.append(byte)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def encode_png(array, color_type, depth, palette=None, trns=None, interlaced=False, ancillary=()):
    """array: H×W or H×W×C samples. Rows use filter 0 (none) and 1 (sub) alternately."""
    height, width = array.shape[:2]
    flat = array.reshape(height, width, -1)
    channels = flat.shape[2]
    bytes_per_pixel = max(1, channels * depth // 8)

    def raw_rows(sub):
        rows = b""
        for y, row in enumerate(sub):
            packed = pack_row(row.reshape(-1), depth)
            if y % 2 == 1:  # Sub filter: each byte minus the byte one pixel to the left
                filtered = bytes((packed[i] - (packed[i - bytes_per_pixel] if i >= bytes_per_pixel else 0)) % 256
                                 for i in range(len(packed)))
                rows += b"\x01" + filtered
            else:
                rows += b"\x00" + packed
        return rows

    if interlaced:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            sub = flat[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                data += raw_rows(sub)
    else:
        data = raw_rows(flat)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 1 if interlaced else 0))
    for kind, payload in ancillary:
        out += chunk(kind, payload)
    if palette is not None:
        out += chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    compressed = zlib.compress(data, 9)
    # Two IDAT chunks, as large files have.
    middle = len(compressed) // 2
    out += chunk(b"IDAT", compressed[:middle]) + chunk(b"IDAT", compressed[middle:])
    out += chunk(b"IEND", b"")
    return out


def gray_to_rgb(gray):
    return np.repeat(gray[..., None], 3, axis=2)


def b64(array):
    return base64.b64encode(np.ascontiguousarray(array, np.uint8).tobytes()).decode()


SAMPLES = []


def add(name, data, width, height, image, annotation=None, annotation_error=None, tolerance=0, pillow=None,
        image_error=None):
    """image/annotation: the expected decode, or None with image_error/annotation_error naming the expected
    error; pillow: the array Pillow must decode this PNG to (checks the encoder), or None to skip."""
    (OUT / name).write_bytes(data)
    if pillow is not None:
        decoded = np.asarray(Image.open(io.BytesIO(data)))
        assert decoded.shape == pillow.shape and np.array_equal(decoded, pillow), f"Pillow disagrees on {name}"
    SAMPLES.append({
        "name": name, "width": width, "height": height,
        "image": None if image is None else b64(image), "imageTolerance": tolerance, "imageError": image_error,
        "annotation": None if annotation is None else b64(annotation),
        "annotationError": annotation_error,
    })


def main():
    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()

    # MARK: PNGs
    add("gray8.png", encode_png(GRAY, 0, 8), W, H, gray_to_rgb(GRAY), annotation=GRAY, pillow=GRAY)
    add("gray16.png", encode_png(GRAY16, 0, 16), W, H, gray_to_rgb((GRAY16 >> 8).astype(np.uint8)),
        annotation_error="unsupported")
    gray1 = ((XS + YS) % 3 == 0).astype(np.uint8)
    add("gray1.png", encode_png(gray1, 0, 1), W, H, gray_to_rgb(gray1 * 255), annotation=gray1,
        pillow=gray1.astype(bool))
    gray4 = ((XS + 2 * YS) % 16).astype(np.uint8)
    add("gray4.png", encode_png(gray4, 0, 4), W, H, gray_to_rgb(gray4 * 17), annotation=gray4)
    gray_alpha = np.stack([GRAY, ALPHA], -1)
    add("gray_alpha.png", encode_png(gray_alpha, 4, 8), W, H, gray_to_rgb(GRAY),
        annotation_error="notSingleChannel:grayscale+alpha", pillow=gray_alpha)
    add("rgb.png", encode_png(RGB, 2, 8), W, H, RGB, annotation_error="notSingleChannel:RGB", pillow=RGB)
    rgba = np.concatenate([RGB, ALPHA[..., None]], -1)
    add("rgba.png", encode_png(rgba, 6, 8), W, H, RGB, annotation_error="notSingleChannel:RGBA", pillow=rgba)
    add("rgb16.png", encode_png(RGB16, 2, 16), W, H, (RGB16 >> 8).astype(np.uint8),
        annotation_error="notSingleChannel:RGB", pillow=(RGB16 >> 8).astype(np.uint8))
    add("rgb_interlaced.png", encode_png(RGB, 2, 8, interlaced=True), W, H, RGB,
        annotation_error="notSingleChannel:RGB", pillow=RGB)
    add("palette.png", encode_png(IDS, 3, 8, palette=VOC), W, H, VOC[IDS], annotation=IDS, pillow=IDS)
    add("palette_interlaced.png", encode_png(IDS, 3, 8, palette=VOC, interlaced=True), W, H, VOC[IDS],
        annotation=IDS, pillow=IDS)
    ids4 = ((XS * 3 + YS) % 16).astype(np.uint8)
    add("palette4.png", encode_png(ids4, 3, 4, palette=VOC[:16]), W, H, VOC[ids4], annotation=ids4, pillow=ids4)
    # Ancillary chunks the decoder skips: text, gamma, a garbage colour profile
    # (libpng would reject it), transparency and a private chunk.
    ancillary = [(b"gAMA", struct.pack(">I", 45455)), (b"tEXt", b"Comment\x00class ids"),
                 (b"iCCP", b"bogus\x00\x00" + zlib.compress(b"not an ICC profile")), (b"prVt", b"\x01\x02\x03")]
    add("palette_ancillary.png", encode_png(IDS, 3, 8, palette=VOC, trns=[0] * 10, ancillary=ancillary), W, H,
        VOC[IDS], annotation=IDS)
    # Indices beyond a 2-entry palette: class ids for an annotation, an
    # invalid image (libpng: "palette index exceeding num_palette").
    add("palette_short.png", encode_png(IDS, 3, 8, palette=VOC[:2]), W, H, None, annotation=IDS,
        image_error="corrupt")

    # MARK: JPEGs (Pillow's encoder; expected = Pillow's decode)
    jw, jh = 29, 19
    _, _, jrgb, jgray, _ = pattern(jw, jh)
    jpegs = [
        ("rgb_baseline.jpg", Image.fromarray(jrgb), dict(quality=90)),
        ("rgb_progressive.jpg", Image.fromarray(jrgb), dict(quality=90, progressive=True)),
        ("rgb_444.jpg", Image.fromarray(jrgb), dict(quality=95, subsampling=0)),
        ("gray.jpg", Image.fromarray(jgray), dict(quality=90)),
        ("cmyk.jpg", Image.fromarray(jrgb).convert("CMYK"), dict(quality=90)),
    ]
    for name, image, options in jpegs:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", **options)
        data = buffer.getvalue()
        decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        add(name, data, jw, jh, decoded, annotation_error="jpeg", tolerance=2)

    manifest = {"generator": "generate_image_samples.py", "pillow": PIL.__version__, "samples": SAMPLES}
    (OUT / "expected.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(SAMPLES)} samples to {OUT}, {total} bytes in all")


if __name__ == "__main__":
    main()
