"""Write resources/icon.png: the app icon, a canvas of 8 x 8 cells in the denoising panel's colours, committed rows
at the top, accepted and kept cells in the middle, noise below.

Run: .venv/bin/python packaging/make_icon.py
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "resources" / "icon.png"
SIZE, CELLS, MARGIN, GAP = 256, 8, 28, 4
NOISE, ACCEPTED, KEPT, COMMITTED = (150, 150, 150), (60, 190, 90), (50, 130, 200), (30, 60, 130)


def cell_colour(row: int, rng: random.Random) -> tuple[int, int, int]:
    if row < 3:
        return COMMITTED
    if row < 6:
        return rng.choices([KEPT, ACCEPTED, NOISE], weights=[5 - row + 3, 3, row - 2])[0]
    return rng.choices([NOISE, ACCEPTED], weights=[5, 1])[0]


def main() -> None:
    rng = random.Random(13)
    img = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((4, 4, SIZE - 5, SIZE - 5), radius=44, fill=(32, 33, 36, 255))
    step = (SIZE - 2 * MARGIN + GAP) / CELLS
    for row in range(CELLS):
        for col in range(CELLS):
            x, y = MARGIN + col * step, MARGIN + row * step
            draw.rounded_rectangle((x, y, x + step - GAP, y + step - GAP), radius=5, fill=cell_colour(row, rng))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    img.save(OUT, optimize=True)
    print(OUT)


if __name__ == "__main__":
    main()
