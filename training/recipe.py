"""Rerun the whole schedule of the shipped ``tiny-trained`` weights, from fresh weights: its five stages in order
(docs/training.md says why each one), each stage starting from the one before.

Run ``python -m training.recipe DIR`` (hours on a CPU: docs/training.md, and a rerun's record in
``training/tiny-rerun``; ``--device cuda`` much less); ``DIR/stage5`` is then a model folder like
``resources/tiny-trained``. It is resumable: stopped by ``--minutes``, SIGTERM or a crash, the same command goes on
from the last saved step of the stage it was in (every ``STATE_EVERY`` steps, and at a time limit or SIGTERM), and
the result equals an uninterrupted run's. A finished stage (its ``training.json`` records its last step) is never
run again, nor any stage before it: to carry a rerun to another machine, the last finished stage's folder and the
state folder of the stage in progress are enough (keep ``DIR``'s path: a stage's settings record the folder it
started from). On one machine and thread count a resumed rerun writes the bytes an uninterrupted one writes; on
another CPU the sums round differently, so the weights differ in their last bits at first and the runs drift apart
(the losses of two machines' reruns differ by a few percent within the first stage).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training import train as tiny_training


@dataclass(frozen=True)
class Stage:
    name: str
    end: int  # the step the stage stops after (its schedule may be longer: the cosine is stopped there)
    options: dict[str, object] = field(default_factory=dict)  # tiny_training's options; True: a flag

    def argv(self) -> list[str]:
        out: list[str] = []
        for key, value in self.options.items():
            out += [f"--{key}"] if value is True else [f"--{key}", str(value)]
        return out


_LATER = {"lr": "1e-3", "warmup": 100, "grow-until": 0, "max-tokens": 160}  # stages 2-5: every length from the start

STAGES: tuple[Stage, ...] = (
    Stage("stage1", 5897, {"stop-after": 5897}),  # the defaults: lr 3e-3, lengths growing to 150 over 15,000 steps
    Stage("stage2", 3260, {"steps": 4000, **_LATER, "stop-after": 3260}),
    Stage("stage3", 4000, {"steps": 4800, **_LATER, "varied": 0.6, "stop-after": 4000}),
    Stage("stage4", 3600, {"steps": 3600, **_LATER, "varied": 0.6, "varied-headers": True}),
    Stage("stage5", 4000, {"steps": 4000, **_LATER, "varied": 0.6, "varied-headers": True, "seed": 5}),
)
# The document stage (docs/training.md): made-up invoices, receipts, forms and letters (pinned extraction and
# extractive questions) on four steps in five, stage 5's parse steps on the fifth, from the shipped weights. Not yet
# part of the shipped weights: ``python -m training.recipe DIR --documents`` runs it after the five stages.
DOCUMENT_STAGE = Stage(
    "stage6",
    800,
    {**_LATER, "steps": 800, "warmup": 50, "varied": 0.6, "varied-headers": True, "documents": 0.8, "seed": 6},
)


def finished(folder: Path, stage: Stage) -> bool:
    record = folder / "training.json"
    return record.is_file() and json.loads(record.read_text()).get("stopped_after", 0) >= stage.end


def run(
    root: Path,
    minutes: float | None = None,
    run_options: Sequence[str] = (),
    stages: Sequence[Stage] = STAGES,
    log=print,
) -> bool:
    """Run (or go on with) ``stages`` under ``root``; True when the last one is finished."""
    deadline = None if minutes is None else time.monotonic() + minutes * 60
    # the last finished stage is where the rest starts: the stages before it need not be kept (a rerun carried
    # from one machine to another keeps only that stage's folder and the state of the stage in progress)
    done = [i for i, stage in enumerate(stages) if finished(root / stage.name, stage)]
    first = done[-1] if done else 0
    earlier: Path | None = None
    for stage in stages[first:]:
        out = root / stage.name
        if not finished(out, stage):
            argv = ["--out", str(out), "--state", str(root / f"{stage.name}-state"), *stage.argv(), *run_options]
            if earlier is not None:
                argv += ["--init-from", str(earlier)]
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    log(f"time is up before {stage.name}; the same command goes on from there")
                    return False
                argv += ["--minutes", f"{left / 60:.3f}"]
            log(json.dumps({"stage": stage.name, "argv": argv}))
            tiny_training.main(argv)
            if not finished(out, stage):
                log(f"{stage.name} stopped before step {stage.end}; the same command goes on from its saved state")
                return False
        earlier = out
    log(f"all {len(stages)} stages finished: {earlier} is the model folder")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.recipe", description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="folder for the stages' models and states (DIR/stage5: the result)")
    ap.add_argument("--minutes", type=float, help="stop after this long, saving the state (the same command resumes)")
    ap.add_argument("--device", default="cpu", help="torch device to train on (cpu, cuda)")
    ap.add_argument("--workers", type=int, default=1, help="processes that make batches ahead (0: inline)")
    ap.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads: on a CPU the same count gives the same bytes, another count the same up to "
        "floating-point order (%(default)s: the rerun docs/training.md reports)",
    )
    ap.add_argument("--documents", action="store_true", help="then the document stage (DIR/stage6)")
    args = ap.parse_args(argv)
    options = ["--device", args.device, "--workers", str(args.workers), "--threads", str(args.threads)]
    stages = (*STAGES, DOCUMENT_STAGE) if args.documents else STAGES
    return 0 if run(args.root, args.minutes, options, stages) else 3


if __name__ == "__main__":
    raise SystemExit(main())
