"""Build the app bundle: a one-folder ``DiffusionWorkbench/`` with the ``dwb`` executable, packed as an archive
(``.tar.gz`` on Linux and macOS, ``.zip`` on Windows).

    python packaging/build.py --tier light|full [--dist DIR] [--work DIR] [--no-archive]

light: the window, the builtin engine and exports, no torch or transformers; full: with the model runtime.
Build folders default to the system's temporary folder, never the repository. Needs PyInstaller (the bundle extra).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "packaging" / "dwb.spec"
APP = "DiffusionWorkbench"


def build(tier: str, dist: Path, work: Path, archive: bool = True) -> dict[str, object]:
    """Run PyInstaller on the spec; returns the app folder, its size, the archive and the seconds it took."""
    started = time.monotonic()
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(SPEC),
        "--noconfirm",
        "--clean",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        "--",
        "--tier",
        tier,
    ]
    subprocess.run(cmd, check=True, cwd=ROOT)
    app = dist / APP
    linked = link_duplicates(app)
    result: dict[str, object] = {"tier": tier, "app": app, "bytes": tree_size(app), "deduplicated_bytes": linked}
    result["system_bytes"] = system_library_bytes(app)
    if archive:
        result["archive"] = pack(app, dist / f"{APP}-{version()}-{tier}-{platform_tag()}")
        result["archive_bytes"] = Path(str(result["archive"])).stat().st_size
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def link_duplicates(app: Path) -> int:
    """PyInstaller copies a shared library both where its package keeps it and at the top of ``_internal`` (torch,
    CUDA): where both copies are the same file, the top one becomes a relative link. Returns the bytes saved.
    Windows has no links for ordinary users: nothing is changed there."""
    if os.name == "nt":
        return 0
    internal = app / "_internal"
    by_name: dict[str, list[Path]] = {}
    for path in internal.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.parent != internal and path.stat().st_size > 1 << 20:
            by_name.setdefault(path.name, []).append(path)
    saved = 0
    for top in internal.iterdir():
        if not top.is_file() or top.is_symlink():
            continue
        for twin in by_name.get(top.name, []):
            if twin.stat().st_size == top.stat().st_size and same_bytes(top, twin):
                saved += top.stat().st_size
                top.unlink()
                top.symlink_to(os.path.relpath(twin, internal))
                break
    return saved


def same_bytes(a: Path, b: Path, chunk: int = 1 << 20) -> bool:
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(chunk), fb.read(chunk)
            if x != y:
                return False
            if not x:
                return True


def tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def system_library_bytes(app: Path) -> int:
    """The bytes of the system's shared libraries that PyInstaller collected into ``app`` (X11, GL, fontconfig...):
    files that are byte copies of a library in the system's linker cache (``ldconfig -p``). What they weigh depends on
    the machine that builds, not on this project; 0 where there is no ``ldconfig`` (Windows, macOS)."""
    ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if Path("/sbin/ldconfig").exists() else None)
    if ldconfig is None:
        return 0
    listing = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, check=False).stdout
    system: dict[str, list[Path]] = {}
    for line in listing.splitlines()[1:]:
        name, _, target = line.strip().partition(" => ")
        if target:
            system.setdefault(name.split(" (")[0], []).append(Path(target))
    total = 0
    for path in app.rglob("*.so*"):
        if not path.is_file() or path.is_symlink():
            continue
        twins = [t for t in system.get(path.name, []) if t.is_file() and t.stat().st_size == path.stat().st_size]
        if any(same_bytes(path, twin) for twin in twins):
            total += path.stat().st_size
    return total


def pack(app: Path, base: Path) -> Path:
    fmt = "zip" if os.name == "nt" else "gztar"
    return Path(shutil.make_archive(str(base), fmt, root_dir=app.parent, base_dir=app.name))


def version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("diffusion-workbench")


def platform_tag() -> str:
    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    return f"{system}-{platform.machine().lower()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=("light", "full"), default="light")
    parser.add_argument("--dist", type=Path, help="output folder (default: a folder under the system's temp)")
    parser.add_argument("--work", type=Path, help="PyInstaller's work folder (default: under the system's temp)")
    parser.add_argument("--no-archive", action="store_true", help="leave the folder, do not pack it")
    args = parser.parse_args(argv)
    base = Path(tempfile.gettempdir()) / f"dwb-build-{args.tier}"
    dist, work = args.dist or base / "dist", args.work or base / "work"
    result = build(args.tier, dist.resolve(), work.resolve(), archive=not args.no_archive)
    print(
        f"{APP} ({result['tier']}): {result['app']}  {result['bytes'] / 2**20:.0f} MiB "
        f"({int(result['deduplicated_bytes']) / 2**20:.0f} MiB of duplicate libraries linked; "
        f"{int(result['system_bytes']) / 2**20:.0f} MiB of it the system's own libraries)"
    )
    if "archive" in result:
        print(f"archive: {result['archive']}  {int(result['archive_bytes']) / 2**20:.0f} MiB")
    print(f"built in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
