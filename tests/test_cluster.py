"""``dwb parse --cluster`` on a local Ray instance (2 CPUs): the files and manifest of a single-process run, byte
for byte; a Ray worker really killed in the middle, bounded retries, the failure listed, then a rerun completes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from app.cli import main
from inference.batch.cluster import run_parse_cluster
from inference.batch.runner import MANIFEST, run_parse
from inference.tasks import BuiltinEngine
from tests.helpers import DATA, needs_shared

ray = pytest.importorskip("ray", reason="the cluster extra (Ray) is not installed")

pytestmark = needs_shared("data")
BORN_DIGITAL = [
    "docling/pdf/code_and_formula.pdf",
    "docling/pdf/right_to_left_01.pdf",
    "docling/pdf/invisible_text_layer.pdf",
]  # code, formulas, two pages; right-to-left; invisible text
SCANS = ["ocrmypdf/francais.pdf", "ocrmypdf/blank.pdf", "ocrmypdf/invalid.pdf"]  # OCR; a blank scan; not a PDF
FORMATS = "md,json"


@pytest.fixture(scope="module")
def local_ray():
    """A Ray instance of the module's own: ``address="local"`` starts one (never joins a cluster recorded under the
    system's temp folder, as a bare ``ray.init()`` would), with its sockets and logs in a temp folder of its own."""
    folder = tempfile.mkdtemp(prefix="dwb-ray-")  # short: Ray's socket paths must fit in 107 characters
    ray.init(
        address="local",
        _temp_dir=folder,
        num_cpus=2,
        object_store_memory=256 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


def inbox(root: Path, names: list[str]) -> Path:
    """The shared files, linked (never copied) into one folder."""
    root.mkdir()
    for name in names:
        (root / Path(name).name).symlink_to(DATA / name)
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return inbox(tmp_path_factory.mktemp("corpus") / "in", BORN_DIGITAL + SCANS)


@pytest.fixture(scope="module")
def single(corpus, tmp_path_factory) -> Path:
    """The reference: the same corpus parsed in this process."""
    out = tmp_path_factory.mktemp("single")
    run_parse([corpus], out, BuiltinEngine(), formats=FORMATS.split(","))
    return out


def tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_bad_options_and_no_cluster_are_clear_errors(tmp_path, monkeypatch, capsys):
    """First in the module: the local instance is not running yet (``auto`` must find no cluster)."""
    pdf = str(DATA / BORN_DIGITAL[0])
    assert main(["parse", pdf, "--out", str(tmp_path), "--cluster", "10.0.0.1:6379"]) == 2
    assert "ray://HOST:PORT" in capsys.readouterr().err
    assert main(["parse", pdf, "--out", str(tmp_path), "--cluster", "auto", "--model", "tiny"]) == 2
    assert "builtin or the remote engine" in capsys.readouterr().err
    assert main(["parse", pdf, "--out", str(tmp_path), "--cluster", "auto", "--cluster-retries", "-1"]) == 2
    assert "--cluster-retries must be 0 or more" in capsys.readouterr().err
    if ray.is_initialized():
        pytest.skip("a Ray instance is already connected in this process")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # where `auto` looks for a running cluster: none there
    assert main(["parse", pdf, "--out", str(tmp_path / "out"), "--cluster", "auto"]) == 2
    err = capsys.readouterr().err
    assert "dwb: cannot connect to the Ray cluster at auto" in err and "RAY_AUTH_MODE=token" in err
    assert "Traceback" not in err and not any((tmp_path / "out").iterdir())


def test_cluster_parse_writes_what_one_process_writes(local_ray, corpus, single, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["parse", str(corpus), "--out", str(out), "--format", FORMATS, "--cluster", "auto"]
    assert main(args) == 1  # invalid.pdf fails, as in a single-process run
    err = capsys.readouterr().err
    print(err)
    assert "5 parsed, 0 already done, 0 partial, 1 failed" in err
    assert f"failed:  {corpus / 'invalid.pdf'}: not a readable PDF" in err and "Traceback" not in err
    assert tree(out) == tree(single)  # every file and the manifest, byte for byte
    manifest = json.loads((out / MANIFEST).read_text())["documents"]
    assert manifest["invalid.pdf"]["status"] == "failed" and manifest["invalid.pdf"]["outputs"] == []


class KillingEngine:
    """The builtin engine, except that it kills its own Ray worker process (SIGKILL) the first ``n`` times it is
    given a chosen document; marker files count the kills across worker processes."""

    name = "builtin"

    def __init__(self, markers: Path, kills: dict[str, int]) -> None:
        self.inner, self.markers, self.kills = BuiltinEngine(), markers, kills

    def parse(self, doc: Any, options: Any = None, context: Any = None) -> Any:
        done = sorted(self.markers.glob(f"{doc.name}.*"))
        if len(done) < self.kills.get(doc.name, 0):
            (self.markers / f"{doc.name}.{os.getpid()}").touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.parse(doc, options, context)


@dataclass(frozen=True)
class KillingSpec:
    markers: str
    kills: tuple[tuple[str, int], ...]
    name: ClassVar[str] = "builtin"  # the manifest's options match the single-process run's

    def build(self) -> KillingEngine:
        return KillingEngine(Path(self.markers), dict(self.kills))


def test_killed_worker_is_retried_a_bounded_number_of_times_then_a_rerun_completes(local_ray, corpus, single, tmp_path):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    docs = [corpus / Path(name).name for name in BORN_DIGITAL]  # the born-digital ones: no OCR, quick
    markers = tmp_path / "markers"
    markers.mkdir()
    # code_and_formula: killed once, then its retry parses it; right_to_left_01: killed on both of its tries
    spec = KillingSpec(str(markers), (("code_and_formula.pdf", 1), ("right_to_left_01.pdf", 2)))
    out = tmp_path / "out"
    first = run_parse_cluster(docs, out, spec, formats=FORMATS.split(","), retries=1)
    status = {Path(i.path).name: i.status for i in first.items}
    assert status == {
        "code_and_formula.pdf": "done",
        "right_to_left_01.pdf": "failed",
        "invisible_text_layer.pdf": "done",
    }
    killed = [int(p.suffix[1:]) for p in markers.iterdir()]
    assert len(killed) == 3
    for pid in killed:  # really killed: those worker processes are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    message = first.failed[0].message
    print(message)
    assert "right_to_left_01.pdf: its Ray task failed 2 time(s)" in message
    manifest = json.loads((out / MANIFEST).read_text())["documents"]
    assert manifest["right_to_left_01.pdf"] == {
        **manifest["right_to_left_01.pdf"],
        "status": "failed",
        "outputs": [],
        "errors": [message],
    }
    kept = {p: p.stat().st_mtime_ns for p in out.glob("*.md")}

    again = run_parse_cluster(docs, out, spec, formats=FORMATS.split(","), retries=1)
    assert {Path(i.path).name: i.status for i in again.items} == {
        "code_and_formula.pdf": "skipped",
        "right_to_left_01.pdf": "done",
        "invisible_text_layer.pdf": "skipped",
    }
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    reference = tree(single)
    got = tree(out)
    assert {k: v for k, v in got.items() if k != MANIFEST} == {k: reference[k] for k in got if k != MANIFEST}
    assert len(got) == 7
    expected = json.loads(reference[MANIFEST])["documents"]
    assert json.loads(got[MANIFEST])["documents"] == {Path(n).name: expected[Path(n).name] for n in BORN_DIGITAL}
