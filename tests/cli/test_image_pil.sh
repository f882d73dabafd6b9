#!/bin/sh
# The ViT network input equals the one PyTorch users' PIL pipeline builds (timm / torchvision transforms on
# Debian's python3-pil: Image.open().convert("RGB"), resize with PIL's bicubic or bilinear, center crop,
# ToTensor, Normalize), value for value, on PNG and JPEG photos of many sizes and aspect ratios: the photos of
# ../shared/images cropped, scaled and re-saved by PIL here (baseline, 4:4:4, progressive, grayscale and CMYK
# JPEGs; RGB, palette, palette with transparency, RGBA, LA, gray, 1-bit and 16-bit PNGs), through
# `attnviz run --image ... --dump-pixels`, with the timm model's bicubic and a bilinear variant of it.
# Prints PASS/FAIL/SKIP lines.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${ATTNVIZ_BIN:-$ROOT/build/attnviz}
SHARED=${ATTNVIZ_SHARED:-$ROOT/../shared}
PY=/usr/bin/python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/attnviz-image-pil-XXXXXX")
trap 'rm -rf "$TMP"' EXIT

if [ ! -f "$SHARED/models/vit-tiny/model.safetensors" ] || [ ! -f "$SHARED/images/chelsea.png" ]; then
    echo "SKIP image_pil: ../shared/models/vit-tiny or ../shared/images not found"
    exit 0
fi
if ! "$PY" -c 'import PIL, numpy' 2>/dev/null; then
    echo "SKIP image_pil: python3-pil and python3-numpy are needed (make deps)"
    exit 0
fi

timeout 300 "$PY" - "$BIN" "$SHARED" "$TMP" "$ROOT/scripts" <<'EOF'
import io, json, math, os, struct, subprocess, sys, zlib
import numpy as np
from PIL import Image

BIN, SHARED, TMP, SCRIPTS = sys.argv[1:5]
sys.path.insert(0, SCRIPTS)
import safetensors_np

IMG = os.path.join(SHARED, "images")
VIT = os.path.join(SHARED, "models", "vit-tiny")

def png16(path, rgb16):
    """A 16-bit RGB PNG (PIL cannot write one)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\0" + rgb16[y].astype(">u2").tobytes() for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

# ---- test images: sizes and aspect ratios (down- and up-scaling, square, elongated), then formats ----
srcs = {n: Image.open(os.path.join(IMG, n)).convert("RGB") for n in ("chelsea.png", "astronaut.png", "coffee.png", "rocket.jpg")}
files = [os.path.join(IMG, n) for n in srcs]  # the originals, rocket.jpg as shot
shapes = [("chelsea.png", (0, 0, 300, 200)), ("astronaut.png", (40, 0, 239, 301)), ("coffee.png", (0, 0, 224, 224)),
          ("rocket.jpg", (100, 50, 197, 181)), ("coffee.png", (0, 100, 600, 250)), ("astronaut.png", (0, 0, 512, 512))]
for i, (n, box) in enumerate(shapes):
    im = srcs[n].crop(box)
    for fmt, kw in (("png", {}), ("jpg", {"quality": 90})):
        p = os.path.join(TMP, "crop%d.%s" % (i, fmt))
        im.save(p, **kw)
        files.append(p)
big = srcs["coffee.png"].resize((1200, 700), Image.LANCZOS)  # a larger photo, strong downscale
for name, im, kw in [
    ("big.jpg", big, {"quality": 85}),
    ("q444.jpg", srcs["chelsea.png"], {"quality": 95, "subsampling": 0}),
    ("progressive.jpg", srcs["astronaut.png"], {"quality": 80, "progressive": True}),
    ("gray.jpg", srcs["coffee.png"].convert("L"), {"quality": 90}),
    ("cmyk.jpg", srcs["chelsea.png"].convert("CMYK"), {"quality": 90}),
    ("gray.png", srcs["chelsea.png"].convert("L"), {}),
    ("bw.png", srcs["astronaut.png"].convert("1"), {}),
    ("palette.png", srcs["coffee.png"].convert("P", palette=Image.ADAPTIVE, colors=64), {}),
    ("rgba.png", srcs["rocket.jpg"].convert("RGBA"), {}),
    ("la.png", srcs["chelsea.png"].convert("LA"), {}),
]:
    p = os.path.join(TMP, name)
    im.save(p, **kw)
    files.append(p)
pt = srcs["chelsea.png"].convert("P", palette=Image.ADAPTIVE, colors=16)
p = os.path.join(TMP, "palette_trns.png")
pt.save(p, transparency=3)
files.append(p)
rgba = np.asarray(srcs["rocket.jpg"].convert("RGBA")).copy()
rgba[::3, :, 3] = 0  # transparent rows: dropped, never composited
p = os.path.join(TMP, "rgba_holes.png")
Image.fromarray(rgba, "RGBA").save(p)
files.append(p)
p = os.path.join(TMP, "rgb16.png")
png16(p, (np.asarray(srcs["coffee.png"], np.uint16) * 257 + np.arange(600, dtype=np.uint16)[None, :, None] % 200))
files.append(p)

# ---- the two preprocessing configs: the model's (bicubic), and a bilinear variant with another crop_pct ----
cfg = json.load(open(os.path.join(VIT, "config.json")))
variant = os.path.join(TMP, "vit-bilinear")
os.mkdir(variant)
for f in ("model.safetensors", "imagenet_labels.txt"):
    os.symlink(os.path.join(VIT, f), os.path.join(variant, f))
cfg2 = json.loads(json.dumps(cfg))
cfg2["pretrained_cfg"]["interpolation"] = "bilinear"
cfg2["pretrained_cfg"]["crop_pct"] = 0.875
json.dump(cfg2, open(os.path.join(variant, "config.json"), "w"))
models = [(VIT, cfg["pretrained_cfg"]), (variant, cfg2["pretrained_cfg"])]

def pil_pipeline(path, pc):
    """timm's eval transform: Resize(floor(size / crop_pct)) + CenterCrop + ToTensor + Normalize, on PIL."""
    size = pc["input_size"][1]
    short = int(math.floor(size / pc["crop_pct"]))
    im = Image.open(path).convert("RGB")
    w, h = im.size
    rh, rw = (int(short * h / w), short) if w <= h else (short, int(short * w / h))
    im = im.resize((rw, rh), Image.BICUBIC if pc["interpolation"] == "bicubic" else Image.BILINEAR)
    top, left = int(round((rh - size) / 2.0)), int(round((rw - size) / 2.0))
    x = np.asarray(im.crop((left, top, left + size, top + size)), np.uint8).astype(np.float32) / np.float32(255)
    m = np.array(pc["mean"], np.float32).reshape(3, 1, 1)
    s = np.array(pc["std"], np.float32).reshape(3, 1, 1)
    return (x.transpose(2, 0, 1) - m) / s

bad, n = [], 0
for mdir, pc in models:
    for f in files if mdir == VIT else files[::3]:
        out = os.path.join(TMP, "px.safetensors")
        r = subprocess.run([BIN, "run", "--model", mdir, "--image", f, "--dump-pixels", out, "-o",
                            os.path.join(TMP, "t.safetensors"), "--top", "0"], capture_output=True, text=True)
        n += 1
        if r.returncode != 0:
            bad.append("%s: attnviz failed: %s" % (os.path.basename(f), r.stderr.strip()[-200:]))
            continue
        got = safetensors_np.read(out)[0]["pixels"]
        want = pil_pipeline(f, pc)
        d = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        if d != 0:
            bad.append("%s (%s): max |C - PIL| = %g (%d values differ)" % (os.path.basename(f), pc["interpolation"], d,
                       int((got != want).sum()) if got.shape == want.shape else -1))
print("# %d images x preprocessing configs compared with PIL, value for value" % n)
if bad:
    print("FAIL image_pil_network_input_equals_pil: " + "; ".join(bad[:5]))
else:
    print("PASS image_pil_network_input_equals_pil")

# hostile JPEGs (stb_image 2.27 overflowed on the first and decoded the second from uninitialised memory):
# attnviz does what PIL does, refusing with a clear message or giving PIL's pixels
def segments(data):
    """(offset, marker, length) of the marker segments before the first scan's data."""
    out, i = [], 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        m, n = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        out.append((i, m, n))
        if m == 0xDA:
            break
        i += 2 + n
    return out
buf = io.BytesIO()
srcs["chelsea.png"].crop((0, 0, 64, 48)).save(buf, "JPEG", quality=90)
base = buf.getvalue()
off, _, n = next(s for s in segments(base) if s[1] == 0xC4)
counts = bytes([17] * 16)  # 272 codes: more than a table can hold
dht = bytes([0xFF, 0xC4]) + (2 + 1 + 16 + 272).to_bytes(2, "big") + bytes([base[off + 4]]) + counts + bytes(range(256)) + bytes(16)
hostile = {"dht_272_codes.jpg": base[:off] + dht + base[off + 2 + n:]}
buf = io.BytesIO()
srcs["astronaut.png"].crop((0, 0, 64, 64)).save(buf, "JPEG", quality=90, progressive=True)
prog = buf.getvalue()  # every Huffman table removed: the scans name tables that are never defined
hostile["progressive_no_dht.jpg"] = prog[:2] + b"".join(
    prog[o:o + 2 + n] for o, m, n in segments(prog) if m != 0xC4) + prog[segments(prog)[-1][0] + 2 + segments(prog)[-1][2]:]
hostile["truncated.jpg"] = base[: len(base) - 200]  # inside the entropy-coded data
msgs = []
for name, data in hostile.items():
    p = os.path.join(TMP, name)
    open(p, "wb").write(data)
    try:
        want = pil_pipeline(p, cfg["pretrained_cfg"])
    except Exception as e:  # PIL refuses it
        want = None
    out = os.path.join(TMP, "px.safetensors")
    if os.path.exists(out):
        os.unlink(out)
    r = subprocess.run([BIN, "run", "--model", VIT, "--image", p, "--dump-pixels", out, "-o",
                        os.path.join(TMP, "t.safetensors"), "--top", "0"], capture_output=True, text=True)
    if r.returncode < 0 or r.returncode > 2:
        msgs.append("%s: attnviz crashed (%d)" % (name, r.returncode))
    elif want is None and (r.returncode == 0 or name not in r.stderr):
        msgs.append("%s: PIL refuses it, attnviz %s" % (name, "accepted it" if r.returncode == 0 else "said: " + r.stderr[-120:]))
    elif want is not None and (r.returncode != 0 or np.abs(safetensors_np.read(out)[0]["pixels"] - want).max() != 0):
        msgs.append("%s: PIL decodes it, attnviz %s" % (name, "differs" if r.returncode == 0 else "said: " + r.stderr[-120:]))
    print("# %s: PIL %s, attnviz rc %d %s" % (name, "refuses" if want is None else "decodes", r.returncode,
                                              r.stderr.strip()[-100:]))
if msgs:
    print("FAIL image_pil_hostile_jpegs_as_pil: " + "; ".join(msgs))
else:
    print("PASS image_pil_hostile_jpegs_as_pil")

# a 16-bit grayscale PNG is refused with a clear message (PIL clips it to white)
p = os.path.join(TMP, "gray16.png")
Image.fromarray(np.asarray(srcs["chelsea.png"].convert("L"), np.uint16) * 200, "I;16").save(p)
r = subprocess.run([BIN, "run", "--model", VIT, "--image", p, "-o", os.path.join(TMP, "t.safetensors")],
                   capture_output=True, text=True)
if r.returncode != 0 and "16-bit grayscale" in r.stderr:
    print("PASS image_pil_gray16_refused")
else:
    print("FAIL image_pil_gray16_refused: rc %d: %s" % (r.returncode, r.stderr.strip()[-200:]))
EOF
[ $? -eq 124 ] && echo "FAIL image_pil: timed out"
exit 0
