#!/usr/bin/env python3
"""Awkward start pictures for tests/img2img.rs, written with PIL (the library diffusers reads
pictures with): a CMYK JPEG, a 16-bit PNG, a two-frame animated GIF, a palette PNG with
transparency, a 1×1 PNG, an all-black mask, and a text file named .png.

    /tmp/fxv/bin/python tools/make_picture_fixtures.py
"""

from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "pictures"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:48, 0:40]
    rgb = np.stack([x * 6, y * 5, 255 - x * 6], axis=-1).astype(np.uint8)
    Image.fromarray(rgb, "RGB").convert("CMYK").save(OUT / "cmyk.jpg", quality=95)
    # How PIL (and so diffusers) reads it back, for the comparison.
    Image.open(OUT / "cmyk.jpg").convert("RGB").save(OUT / "cmyk-as-pil-reads-it.png")
    # PIL writes 16-bit PNGs for grey only: a 16-bit grey ramp.
    Image.fromarray((x * 1600).astype(np.uint16)).save(OUT / "grey16.png")
    frames = [Image.fromarray(rgb, "RGB"), Image.fromarray(255 - rgb, "RGB")]
    frames[0].save(OUT / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    pal = Image.fromarray(rgb, "RGB").convert("P", palette=Image.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(OUT / "palette-transparent.png", transparency=0)
    Image.new("RGB", (1, 1), (200, 100, 50)).save(OUT / "one-pixel.png")
    Image.new("L", (16, 16), 0).save(OUT / "black.png")
    (OUT / "not-a-picture.png").write_text("this is a text file with a .png name\n")


if __name__ == "__main__":
    main()
