"""Benchmark: peak memory of the builtin engine reading one very large scan against an ordinary one, same run.

Each image is a white page with ten lines of text, parsed (decode, clean-up, OCR) in a fresh process whose peak
resident memory (``ru_maxrss``) is read at the end. The 10,000 x 10,000 image is reduced as it is decoded and again
before OCR, so its peak stays a small multiple of the 2,500 x 2,500 page's. The last line is
``large_image_memory_ratio=<peak 10,000^2 / peak 2,500^2>``.

    .venv/bin/python -m tests.benchmarks.image_memory
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = """
import resource, sys, warnings
from PIL import Image, ImageDraw, ImageFont
warnings.simplefilter("ignore")
side = int(sys.argv[2])
image = Image.new("L", (side, side), 255)
draw = ImageDraw.Draw(image)
font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", side // 60)
for i in range(10):
    draw.text((side // 20, side // 20 + i * side // 30), f"Line {i} of the scanned page", font=font, fill=0)
image.save(sys.argv[1])
del image, draw
from inference.documents import open_document
from inference.tasks import BuiltinEngine
text = BuiltinEngine().parse(open_document(sys.argv[1])).markdown
print(text.count("of the scanned page"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_mb(folder: Path, side: int) -> tuple[int, float]:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder / f"scan{side}.png"), str(side)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    lines, peak = run.stdout.split()[-2:]
    return int(lines), float(peak)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        small_lines, small = peak_mb(Path(tmp), 2500)
        large_lines, large = peak_mb(Path(tmp), 10_000)
    print(f"2,500 x 2,500 (6 MP): {small_lines}/10 lines read, peak {small:.0f} MB")
    print(f"10,000 x 10,000 (100 MP): {large_lines}/10 lines read, peak {large:.0f} MB")
    print(f"large_image_memory_ratio={large / small:.2f}")


if __name__ == "__main__":
    main()
