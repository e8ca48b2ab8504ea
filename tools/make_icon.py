#!/usr/bin/env python3
"""Draws Lantern's app icon: a glowing paper lantern on a night-blue rounded square.

Reproducible: plain Pillow drawing, no randomness, no fonts. Writes assets/icon/lantern-N.png
for N in SIZES. Each size is drawn at 8x and downsampled (Lanczos), so edges are smooth; the
16 and 32 px versions drop the thin ribs and the tassel, which only blur there.

    python3 tools/make_icon.py            # needs Pillow (pip install pillow)
"""

import math
import os
import sys

from PIL import Image, ImageChops, ImageDraw, ImageFilter

SIZES = [16, 32, 48, 64, 128, 256, 512]
SS = 8  # supersampling factor

NIGHT_TOP = (28, 38, 74)
NIGHT_BOTTOM = (12, 16, 36)
GLOW = (255, 176, 64)
BODY_EDGE = (214, 68, 28)
BODY_MID = (246, 128, 40)
BODY_CORE = (255, 226, 140)
CAP = (58, 30, 22)
CAP_HI = (122, 70, 40)
GOLD = (240, 190, 80)


def lerp(a, b, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def vertical_gradient(w, h, top, bottom):
    grad = Image.new("RGB", (1, h))
    for y in range(h):
        grad.putpixel((0, y), lerp(top, bottom, y / max(1, h - 1)))
    return grad.resize((w, h))


def radial(w, h, cx, cy, rx, ry, inner, outer, power=1.0):
    """An RGBA radial gradient from `inner` at (cx, cy) to `outer` at the ellipse (rx, ry)."""
    # Drawn small and scaled up: smooth and fast.
    k = 8
    sw, sh = max(1, w // k), max(1, h // k)
    img = Image.new("RGBA", (sw, sh))
    px = img.load()
    for y in range(sh):
        for x in range(sw):
            dx = ((x + 0.5) * k - cx) / rx
            dy = ((y + 0.5) * k - cy) / ry
            t = min(1.0, math.hypot(dx, dy)) ** power
            px[x, y] = lerp(inner, outer, t)
    return img.resize((w, h), Image.BILINEAR)


def draw(size):
    detailed = size >= 48
    s = size * SS
    u = s / 64.0  # one unit of a 64-unit design grid

    # Background: a rounded square, night blue, lighter at the top.
    bg_mask = Image.new("L", (s, s), 0)
    margin = 1 * u if size >= 32 else 0
    ImageDraw.Draw(bg_mask).rounded_rectangle(
        [margin, margin, s - margin - 1, s - margin - 1], radius=13 * u, fill=255
    )
    icon = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    icon.paste(vertical_gradient(s, s, NIGHT_TOP, NIGHT_BOTTOM), (0, 0), bg_mask)

    # Lantern geometry (design units): body ellipse centred at (32, 36).
    cx, cy = 32 * u, 33.5 * u
    rx, ry = 18 * u, 14.5 * u
    if not detailed:
        cy = 34 * u
        rx, ry = 20.5 * u, 17 * u

    # Warm halo around the lantern, clipped to the background.
    halo = radial(s, s, cx, cy, 30 * u, 30 * u, (190, 108, 34, 255), (0, 0, 0, 255), power=0.75)
    lit = ImageChops.screen(icon.convert("RGB"), halo.convert("RGB")).convert("RGBA")
    lit.putalpha(icon.getchannel("A"))
    icon = lit

    d = ImageDraw.Draw(icon)

    # Hanging loop and string.
    top_cap_y = cy - ry
    if detailed:
        d.line([(cx, 10 * u), (cx, top_cap_y - 1 * u)], fill=GOLD, width=round(1.6 * u))
        d.ellipse(
            [cx - 2.8 * u, 4.6 * u, cx + 2.8 * u, 10.2 * u], outline=GOLD, width=round(1.6 * u)
        )
    else:
        d.line([(cx, 3 * u), (cx, top_cap_y - 3 * u)], fill=GOLD, width=round(3 * u))

    # Body: an ellipse filled with a radial glow (bright core, orange, red-orange rim).
    body_mask = Image.new("L", (s, s), 0)
    ImageDraw.Draw(body_mask).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    body = radial(
        s, s, cx - 2 * u, cy - 2 * u, rx * 1.05, ry * 1.05, BODY_CORE + (255,), BODY_EDGE + (255,), power=1.6
    )
    # A mid stop: blend toward BODY_MID in the middle ring.
    mid = radial(s, s, cx - 2 * u, cy - 2 * u, rx, ry, BODY_MID + (0,), BODY_MID + (255,), power=0.6)
    mid_a = mid.getchannel("A").point(lambda a: int(a * (1 - abs(a - 128) / 128) * 0.9))
    mid.putalpha(mid_a)
    body = Image.alpha_composite(body, mid)
    icon.paste(body, (0, 0), body_mask)

    # Ribs: elliptical arcs inside the body (the paper lantern's bamboo frame).
    if detailed:
        rib_layer = Image.new("RGBA", (s, s), (0, 0, 0, 0))
        rd = ImageDraw.Draw(rib_layer)
        w = max(1, round(1.1 * u))
        for frac in (0.36, 0.72):
            ex = rx * frac
            rd.ellipse([cx - ex, cy - ry, cx + ex, cy + ry], outline=BODY_EDGE + (190,), width=w)
        rd.line([(cx, cy - ry), (cx, cy + ry)], fill=BODY_EDGE + (190,), width=w)
        rib_layer.putalpha(ImageChops.multiply(rib_layer.getchannel("A"), body_mask))
        icon = Image.alpha_composite(icon, rib_layer)
        d = ImageDraw.Draw(icon)

    # Caps: dark lacquered bands, top and bottom, with a light edge.
    cap_w = (10.5 if detailed else 13) * u
    cap_h = (4.2 if detailed else 5) * u
    for y0 in (top_cap_y - cap_h * 0.55, cy + ry - cap_h * 0.45):
        d.rounded_rectangle(
            [cx - cap_w, y0, cx + cap_w, y0 + cap_h], radius=1.4 * u, fill=CAP
        )
        if detailed:
            d.rounded_rectangle(
                [cx - cap_w, y0, cx + cap_w, y0 + cap_h * 0.38], radius=1.2 * u, fill=CAP_HI
            )

    # Tassel.
    bottom = cy + ry + cap_h * 0.55
    if detailed:
        d.line([(cx, bottom), (cx, bottom + 3 * u)], fill=GOLD, width=round(1.6 * u))
        d.polygon(
            [(cx - 2.2 * u, bottom + 3 * u), (cx + 2.2 * u, bottom + 3 * u),
             (cx + 2.8 * u, bottom + 8.5 * u), (cx - 2.8 * u, bottom + 8.5 * u)],
            fill=BODY_EDGE,
        )
        d.rectangle([cx - 2.4 * u, bottom + 2.6 * u, cx + 2.4 * u, bottom + 3.8 * u], fill=GOLD)

    # Soft highlight at the upper left of the body.
    hl = radial(s, s, cx - 7 * u, cy - 7 * u, 6 * u, 5 * u, (255, 250, 220, 120), (255, 250, 220, 0))
    hl.putalpha(ImageChops.multiply(hl.getchannel("A"), body_mask))
    icon = Image.alpha_composite(icon, hl)

    return icon.resize((size, size), Image.LANCZOS)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "assets", "icon")
    os.makedirs(out, exist_ok=True)
    sizes = [int(a) for a in sys.argv[1:]] or SIZES
    for n in sizes:
        path = os.path.join(out, f"lantern-{n}.png")
        # No timestamps or text chunks: the same bytes every run.
        draw(n).save(path, optimize=True)
        print(path)


if __name__ == "__main__":
    main()
