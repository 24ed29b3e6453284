"""Video backend (OpenCV): frames at scene changes within a frame budget, uniform fallback, timestamps.

DiffusionGemma in ``transformers`` ignores video tensors, so each frame becomes an image page labelled with its
``mm:ss`` timestamp; the prompt builder puts that timestamp before the frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inference.documents.model import Document, Page, file_sha256
from inference.errors import IngestError

SAMPLE_FPS = 4.0  # frames examined per second of video when looking for scene changes
SCENE_THRESHOLD = 0.35  # Bhattacharyya distance between HSV histograms that counts as a cut


def timestamp(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


def open_video(path: str | Path, max_frames: int = 16) -> Document:
    import cv2

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise IngestError("the video file is missing or empty", path=path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise IngestError("not a readable video (OpenCV could not open it)", path=path)
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        fps = fps if 0 < fps < 1000 else 25.0
        step = max(1, round(fps / SAMPLE_FPS))
        samples: list[tuple[int, Any]] = []  # (frame index, frame)
        index = 0
        while True:
            ok = cap.grab()
            if not ok:
                break
            if index % step == 0:
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    samples.append((index, frame))
            index += 1
    finally:
        cap.release()
    if not samples:
        raise IngestError("the video has no decodable frames", path=path)
    chosen = _scene_frames(samples, max_frames)
    doc = Document(
        source=str(path),
        sha256=file_sha256(path),
        kind="video",
        metadata={
            "fps": fps,
            "frames": index,
            "duration": index / fps,
            "sampled": len(samples),
            "selection": chosen[1],
        },
    )
    frames = {}
    for n, (frame_index, frame) in enumerate(chosen[0], start=1):
        seconds = frame_index / fps
        h, w = frame.shape[:2]
        frames[n] = frame
        doc.pages.append(
            Page(
                number=n,
                label=timestamp(seconds),
                width=w,
                height=h,
                scanned=False,
                timestamp=round(seconds, 3),
                attrs={"frame_index": frame_index},
            )
        )
    doc.renderer = lambda number, dpi=0: _to_pil(frames[number])
    return doc


def _to_pil(frame: Any) -> Any:
    import cv2
    from PIL import Image

    return Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def _scene_frames(samples: list[tuple[int, Any]], budget: int) -> tuple[list[tuple[int, Any]], str]:
    """The first frame of each scene (largest cuts first when over budget); uniform when no cuts are found."""
    import cv2

    hists = []
    for _, frame in samples:
        hsv = cv2.cvtColor(cv2.resize(frame, (160, 90)), cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [16, 8, 8], [0, 180, 0, 256, 0, 256])
        hists.append(cv2.normalize(hist, hist).flatten())
    cuts = [(cv2.compareHist(hists[i - 1], hists[i], cv2.HISTCMP_BHATTACHARYYA), i) for i in range(1, len(hists))]
    starts = [0] + [i for score, i in sorted(cuts, reverse=True) if score >= SCENE_THRESHOLD][: budget - 1]
    if len(starts) >= 2:
        return [samples[i] for i in sorted(starts)], "scenes"
    count = min(budget, len(samples))
    picks = sorted({round(k * (len(samples) - 1) / max(count - 1, 1)) for k in range(count)})
    return [samples[i] for i in picks], "uniform"
