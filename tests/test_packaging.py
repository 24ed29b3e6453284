"""The app bundle: the code it relies on (resources found frozen, the version, a clear message without the
model runtime, a screenshot that fails when its state did not render), then the light bundle itself, built into a
temp folder by ``packaging/build.py`` and run from another folder with a clean environment. The full bundle's test
runs only with ``DWB_TEST_FULL_BUNDLE=1`` (it takes minutes and several GB)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from app import resources
from app.cli import main
from tests.helpers import DATA, needs_shared

ROOT = Path(__file__).resolve().parents[1]
SCAN = DATA / "ocrmypdf" / "linn.pdf"  # a scanned page with no text layer: text only through OCR
# The light bundle without the system libraries PyInstaller collects (its size: docs/benchmarks.md); the limit leaves
# about a tenth to grow, so a new dependency of any size (torch: hundreds of MiB) shows up here.
LIGHT_LIMIT_MIB = 600
NO_RUNTIME = "no model runtime"


def without_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make torch, torchvision and transformers look absent, as in the light bundle."""
    real = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):
        return None if name.split(".")[0] in ("torch", "torchvision", "transformers") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


# the code the bundle needs ------------------------------------------------------------------------------------------


def test_resources_found_in_the_source_tree_and_frozen(monkeypatch, tmp_path):
    for name in ("sample.pdf", "icon.png", "diffusion-workbench.desktop"):
        assert resources.resource_path(name).is_file(), name
    assert not resources.frozen()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.frozen()
    assert resources.resource_path("sample.pdf") == tmp_path / "resources" / "sample.pdf"


def test_desktop_entry_is_valid():
    lines = resources.resource_path("diffusion-workbench.desktop").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "[Desktop Entry]"
    entry = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert entry["Type"] == "Application" and entry["Exec"].startswith("dwb") and entry["Icon"]


def test_version_from_package_metadata(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"dwb {version('diffusion-workbench')}"


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "hello"],
        ["model-info", "tiny"],
        ["ask", str(resources.resource_path("sample.pdf")), "What?", "--model", "tiny"],
    ],
)
def test_model_commands_without_the_runtime_say_so(monkeypatch, capsys, argv):
    without_runtime(monkeypatch)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert NO_RUNTIME in err and "full build" in err and "Traceback" not in err


def test_a_missing_runtime_module_is_never_a_traceback(monkeypatch, capsys):
    def broken(_args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr("app.cli.cmd_model_info", broken)
    assert main(["model-info", "tiny"]) == 2  # the runtime is installed here: one module is missing, it says which
    assert "incomplete: no module 'torch'" in capsys.readouterr().err
    without_runtime(monkeypatch)
    assert main(["model-info", "tiny"]) == 2
    assert NO_RUNTIME in capsys.readouterr().err


def test_screenshot_fails_when_the_state_did_not_render(tmp_path):
    """Without the sample document the window shows an error: the command must not exit 0 with that picture."""
    code = (
        "import sys; from pathlib import Path; import app.gui as g; g.SAMPLE = Path(sys.argv[2]); "
        "from app.cli import main; sys.exit(main(['screenshot', sys.argv[1], '--state', 'loaded']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "shot.png"), str(tmp_path / "missing.pdf")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert run.returncode == 2, run.stderr
    assert "did not render the 'loaded' state" in run.stderr
    assert not (tmp_path / "shot.png").exists()


def test_model_dialog_without_the_runtime_says_so(qtbot, monkeypatch):
    from app.gui.main_window import MainWindow

    without_runtime(monkeypatch)
    window = MainWindow()
    qtbot.addWidget(window)
    window.model_dialog()
    assert NO_RUNTIME in window.last_error and "full build" in window.last_error
    assert getattr(window, "dialog", None) is None or not window.dialog.isVisible()
    window.close()


# the bundles --------------------------------------------------------------------------------------------------------


def build_bundle(tier: str, folder: Path) -> Path:
    pytest.importorskip("PyInstaller", reason="the bundle extra (PyInstaller) is not installed")
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "build.py"),
            "--tier",
            tier,
            "--no-archive",
            "--dist",
            str(folder / "dist"),
            "--work",
            str(folder / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    print(run.stdout)
    app = folder / "dist" / "DiffusionWorkbench"
    assert (app / ("dwb.exe" if os.name == "nt" else "dwb")).is_file()
    return app


def frozen_dwb(app: Path, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The frozen ``dwb`` from another folder, with a clean environment (no venv, no PYTHONPATH, no HF cache)."""
    env = {
        "PATH": os.defpath,
        "HOME": str(cwd),
        "QT_QPA_PLATFORM": "offscreen",
        "LANG": "C.UTF-8",
        "HF_HUB_OFFLINE": "1",
    }
    if os.name == "nt":
        env["SYSTEMROOT"] = os.environ.get("SYSTEMROOT", "")
    exe = app / ("dwb.exe" if os.name == "nt" else "dwb")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def system_library_mib(app: Path) -> float:
    """The system's own shared libraries that PyInstaller collected into ``app`` (``packaging/build.py`` finds them)."""
    spec = importlib.util.spec_from_file_location("dwb_build", ROOT / "packaging" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.system_library_bytes(app) / 2**20


def size_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


def assert_not_blank(png: Path) -> None:
    from PIL import Image, ImageStat

    with Image.open(png) as img:
        assert img.width >= 1000 and img.height >= 700
        stat = ImageStat.Stat(img.convert("L"))
        assert stat.stddev[0] > 20, f"the screenshot looks blank (stddev {stat.stddev[0]:.1f})"
        assert len(img.convert("RGB").getcolors(1 << 20) or []) > 50


@pytest.fixture(scope="module")
def light(tmp_path_factory):
    return build_bundle("light", tmp_path_factory.mktemp("light"))


@pytest.fixture
def elsewhere(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


@pytest.mark.slow
def test_light_bundle_size_and_contents(light):
    total, system = size_mib(light), system_library_mib(light)
    own = total - system  # what the project adds: the limit does not move with the libraries the machine has
    print(f"light bundle: {total:.0f} MiB, {system:.0f} MiB of it the system's libraries")
    assert own < LIGHT_LIMIT_MIB, (
        f"the light bundle is {own:.0f} MiB without the {system:.0f} MiB of system libraries PyInstaller collected, "
        f"over its {LIGHT_LIMIT_MIB} MiB limit"
    )
    internal = light / "_internal"
    for absent in ("torch", "transformers", "torchvision", "onnxruntime", "pymupdf4llm", "triton", "ray"):
        assert not (internal / absent).exists(), absent
    for shipped in (
        "resources/sample.pdf",
        "resources/icon.png",
        "resources/diffusion-workbench.desktop",
        "share/tessdata/eng.traineddata",
        "share/tessdata/osd.traineddata",
    ):
        assert (internal / shipped).is_file(), shipped


@pytest.mark.slow
def test_light_bundle_version(light, elsewhere):
    run = frozen_dwb(light, "--version", cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"dwb {version('diffusion-workbench')}"


@pytest.mark.slow
@needs_shared("data", "ocrmypdf", "linn.pdf")
def test_light_bundle_parses_the_sample_and_a_scan(light, elsewhere):
    sample = resources.resource_path("sample.pdf")
    run = frozen_dwb(light, "parse", str(sample), str(SCAN), "--out", "out", "--format", "md,json", cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "pymupdf_layout" not in run.stdout
    assert "How block diffusion writes" in (elsewhere / "out" / "sample.md").read_text(encoding="utf-8")
    scanned = (elsewhere / "out" / "linn.md").read_text(encoding="utf-8")
    assert "LinnSequencer" in scanned and "MIDI" in scanned  # found by Tesseract, from the bundled tessdata


@pytest.mark.slow
def test_light_bundle_screenshot_done(light, elsewhere):
    run = frozen_dwb(light, "screenshot", "done.png", "--state", "done", cwd=elsewhere)
    assert run.returncode == 0, run.stderr
    assert_not_blank(elsewhere / "done.png")


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ("generate", "--model", "tiny", "hello"),
        ("model-info", "tiny"),
        ("screenshot", "gen.png", "--state", "generating"),
    ],
)
def test_light_bundle_model_commands_say_there_is_no_runtime(light, elsewhere, args):
    run = frozen_dwb(light, *args, cwd=elsewhere)
    assert run.returncode == 2, run.stderr
    assert NO_RUNTIME in run.stderr and "full build" in run.stderr
    assert "Traceback" not in run.stderr and "ModuleNotFoundError" not in run.stderr


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DWB_TEST_FULL_BUNDLE") != "1", reason="set DWB_TEST_FULL_BUNDLE=1 (minutes, GBs)")
def test_full_bundle_runs_the_model(tmp_path_factory, tmp_path):
    app = build_bundle("full", tmp_path_factory.mktemp("full"))
    print(f"full bundle: {size_mib(app):.0f} MiB")
    run = frozen_dwb(
        app, "generate", "--model", "tiny", "--max-new-tokens", "32", "--steps", "4", "hello", cwd=tmp_path, timeout=600
    )
    assert run.returncode == 0, run.stderr
    assert "tokens/s" in run.stderr
    run = frozen_dwb(app, "model-info", "tiny", cwd=tmp_path)
    assert run.returncode == 0 and "parameters by group" in run.stdout, run.stderr
    run = frozen_dwb(app, "parse", str(resources.resource_path("sample.pdf")), "--out", "out", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    run = frozen_dwb(app, "screenshot", "done.png", "--state", "done", cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr
    assert_not_blank(tmp_path / "done.png")
