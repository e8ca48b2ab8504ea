#!/usr/bin/env python3
"""Checks that an independent reader, the PyPI package `sd-parsers`, reads the PNGs Lantern
writes: prompt, negative prompt, seed, steps, sampler (and schedule type), CFG scale and size.

Each PNG is compared with the `<name>.expected.json` beside it, which the round-trip tests
write when `LANTERN_KEEP_TEST_PNGS` is set:

    LANTERN_KEEP_TEST_PNGS=/tmp/lantern-pngs cargo test --test png_metadata
    python tools/check_png_metadata.py /tmp/lantern-pngs

Needs `sd-parsers` (which brings Pillow) in the Python that runs it; installs nothing.
Exit status: 0 when every PNG agrees, 1 otherwise.
"""

import json
import sys
from pathlib import Path

from PIL import Image
from sd_parsers import ParserManager


def check(png: Path, expected: dict) -> list:
    problems = []

    def same(field, got, want):
        if got != want:
            problems.append(f"{field}: sd-parsers read {got!r}, expected {want!r}")

    info = ParserManager().parse(png)
    if info is None or not info.samplers:
        return ["sd-parsers found no generation parameters"]
    sampler = info.samplers[0]
    params = sampler.parameters
    same("prompt", info.full_prompt, expected["prompt"])
    same("negative prompt", info.full_negative_prompt, expected["negative_prompt"])
    same("seed", int(params.get("seed", -1)), expected["seed"])
    same("steps", int(params.get("steps", -1)), expected["steps"])
    same("sampler", sampler.name, expected["sampler"])
    same("schedule type", params.get("scheduler"), expected["schedule_type"])
    same("CFG scale", float(params.get("cfg_scale", "nan")), float(expected["guidance"]))
    size = f"{expected['width']}x{expected['height']}"
    same("Size field", info.metadata.get("Size"), size)
    with Image.open(png) as image:
        same("image size (Pillow)", f"{image.width}x{image.height}", size)
    return problems


def main(argv: list) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    pngs = []
    for arg in argv[1:]:
        path = Path(arg)
        pngs.extend(sorted(path.glob("*.png")) if path.is_dir() else [path])
    checked = failed = 0
    for png in pngs:
        sidecar = png.with_suffix(".expected.json")
        if not sidecar.exists():
            print(f"skip {png.name}: no {sidecar.name}")
            continue
        problems = check(png, json.loads(sidecar.read_text(encoding="utf-8")))
        checked += 1
        if problems:
            failed += 1
            print(f"FAIL {png.name}")
            for p in problems:
                print(f"     {p}")
        else:
            print(f"ok   {png.name}")
    print(f"{checked - failed} passed, {failed} failed")
    return 1 if failed or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
