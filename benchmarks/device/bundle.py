"""Download the cp312 wheels that the GPU image lacks for the book's device checks into ``.whl/``.

    python3 benchmarks/device/bundle.py [--out .whl] [--download .whl-download] [--lock FILE]

The GPU image (Python 3.12, torch 2.11 with CUDA, numpy, pandas, scipy, absl-py, lxml, ...) has no
simulators. One call to it carries the working tree plus the wheels, 64 MiB in all, so the dm_control wheel
is repacked without what the book's tasks never load: ``dm_control.locomotion`` (85 of its 116 MB, and the
only user of labmaze, which is therefore left out), the dog domain's meshes, the Blender exporter and the
test assets. Versions come from the book's lock file (``requirements/lock-py311.txt``) where it names them,
else from ``DEFAULT_VERSIONS``. The script prints each wheel's size, the tree's and the total, and exits
non-zero when the total would not travel.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CARRY = (".whl", ".gl")
"""The ignored folders this script fills and a device call carries: the wheels and the GL loaders."""
LIMIT_BYTES = 64 * 2**20
"""What one call to the GPU machine carries: the working tree and every carried path together."""
DEFAULT_VERSIONS = {
    "gymnasium": "1.4.0", "mujoco": "3.3.0", "metaworld": "3.1.1", "dm-control": "1.0.28",
    "dm-env": "1.6", "dm-tree": "0.1.10", "glfw": "2.11.0", "pyopengl": "3.1.10",
    "farama-notifications": "0.0.6",
}
"""The packages the image lacks (each wheel's Requires-Dist, less what the image has), with the versions
the book's tests ran with. labmaze is not among them: only ``dm_control.locomotion`` imports it."""
DROP = {
    "dm-control": ("dm_control/locomotion/", "dm_control/suite/dog_assets/",
                   "dm_control/suite/all_domains.png", "dm_control/blender/",
                   "dm_control/mujoco/testing/assets/", "dm_control/mjcf/test_assets/"),
}
"""Per package, the paths inside its wheel that the repacked wheel leaves out."""
DROPPED_IMPORTS = re.compile(r"^\s*(import labmaze|from labmaze|from dm_control import locomotion|"
                             r"(import|from) dm_control\.locomotion)", re.MULTILINE)
"""An import of what the repacked dm_control leaves out; none may remain in the files it keeps."""
GL_PACKAGES = ("libegl1", "libglvnd0", "libopengl0", "libgl1", "libglx0", "libgles2")
"""Debian's GL loaders (amd64), for an image without ``libEGL.so.1``: run.sh unpacks them only then."""
APT_AMD64 = ("-oAPT::Architecture=amd64", "-oAPT::Architectures=amd64", "-oDir::State::Lists=/tmp/amd64")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "any")


def normalise(name: str) -> str:
    """A distribution name in PEP 503 form (``Farama_Notifications`` -> ``farama-notifications``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_versions(lock: Path | None, names: dict[str, str] = DEFAULT_VERSIONS) -> dict[str, str]:
    """``names``' versions, each taken from the ``pip freeze`` file ``lock`` where it lists the package."""
    found: dict[str, str] = {}
    if lock is not None and lock.is_file():
        for line in lock.read_text().splitlines():
            match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)", line)
            if match:
                found[normalise(match.group(1))] = match.group(2)
    return {name: found.get(name, version) for name, version in names.items()}


def check_size(sizes: dict[str, int], tree_bytes: int, limit: int = LIMIT_BYTES) -> int:
    """The total bytes of the wheels ``sizes`` and the tree; ValueError naming the excess over ``limit``."""
    total = tree_bytes + sum(sizes.values())
    if total > limit:
        ranked = sorted(sizes.items(), key=lambda item: -item[1])[:3]
        largest = ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size in ranked)
        raise ValueError(f"the tree ({tree_bytes / 2**20:.1f} MiB) and the wheels come to "
                         f"{total / 2**20:.1f} MiB, {(total - limit) / 2**20:.1f} MiB over the "
                         f"{limit / 2**20:.0f} MiB one call carries (largest: {largest})")
    return total


def tree_bytes(root: Path = ROOT) -> int:
    """Bytes of what travels without being carried: tracked files and untracked files git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            check=True, capture_output=True).stdout.split(b"\0")
    return sum((root / name.decode()).stat().st_size for name in listed
               if name and (root / name.decode()).is_file())


def exclude(paths: list[str], root: Path = ROOT) -> None:
    """Add each of ``paths`` (``/.whl/``) to ``.git/info/exclude`` once: it travels only when carried."""
    info = root / ".git" / "info" / "exclude"
    info.parent.mkdir(parents=True, exist_ok=True)
    have = info.read_text().splitlines() if info.exists() else []
    with info.open("a") as handle:
        for path in paths:
            if path not in have:
                handle.write(f"{path}\n")


def find_wheel(name: str, version: str, folder: Path) -> Path | None:
    """The one wheel of ``name==version`` in ``folder``, or None; RuntimeError if there are several."""
    found = [w for w in folder.glob("*.whl")
             if normalise(w.name.split("-")[0]) == normalise(name) and w.name.split("-")[1] == version]
    if len(found) > 1:
        raise RuntimeError(f"several wheels of {name}=={version} in {folder}: {found}")
    return found[0] if found else None


def download(name: str, version: str, folder: Path) -> Path:
    """The cp312 manylinux (or pure) wheel of ``name==version`` in ``folder``, downloaded unless there."""
    if (wheel := find_wheel(name, version, folder)) is not None:
        return wheel
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(folder),
                    f"{name}=={version}"], check=True)
    if (wheel := find_wheel(name, version, folder)) is None:
        raise RuntimeError(f"pip saved no wheel of {name}=={version} in {folder}")
    return wheel


def download_gl(folder: Path) -> list[Path]:
    """``GL_PACKAGES``' amd64 .deb files in ``folder`` (``apt-get download``, after an update if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    missing = [p for p in GL_PACKAGES if not list(folder.glob(f"{p}_*_amd64.deb"))]
    if missing:
        Path("/tmp/amd64/partial").mkdir(parents=True, exist_ok=True)
        if subprocess.run(["apt-get", *APT_AMD64, "download", *missing], cwd=folder).returncode != 0:
            subprocess.run(["apt-get", *APT_AMD64, "update", "-qq"], check=True)
            subprocess.run(["apt-get", *APT_AMD64, "download", *missing], cwd=folder, check=True)
    return sorted(folder.glob("*.deb"))


def repack(source: Path, target: Path, drop: tuple[str, ...]) -> list[str]:
    """Copy the wheel ``source`` to ``target`` without the entries under ``drop`` (and their RECORD lines);
    returns the kept Python files that import something dropped (the caller fails on any)."""
    offending = []
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename.startswith(drop):
                continue
            data = old.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                data = b"".join(line for line in data.splitlines(keepends=True)
                                if not line.decode().startswith(drop))
            elif info.filename.endswith(".py") and DROPPED_IMPORTS.search(data.decode(errors="replace")):
                offending.append(info.filename)
            new.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return offending


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / CARRY[0], help="folder of the wheels that travel")
    parser.add_argument("--download", type=Path, default=ROOT / ".whl-download",
                        help="folder of the wheels as downloaded (kept between runs; never carried)")
    parser.add_argument("--gl", type=Path, default=ROOT / CARRY[1],
                        help="folder of the GL loaders' .deb files")
    parser.add_argument("--no-gl", action="store_true", help="leave the GL loaders out")
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements" / "lock-py311.txt",
                        help="pip freeze file whose versions win over the defaults")
    args = parser.parse_args()
    exclude([f"/{p.resolve().relative_to(ROOT)}/" for p in (args.out, args.download, args.gl)
             if p.resolve().is_relative_to(ROOT)])
    versions = pinned_versions(args.lock)
    print(f"versions from {args.lock if args.lock.is_file() else 'DEFAULT_VERSIONS'}")
    args.download.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in args.out.glob("*.whl"):
        stale.unlink()
    sizes: dict[str, int] = {}
    for name, version in versions.items():
        source = download(name, version, args.download)
        target = args.out / source.name
        note = ""
        if name in DROP:
            offending = repack(source, target, DROP[name])
            if offending:
                raise SystemExit(f"{name}: kept files import what the repacked wheel drops: {offending}")
            note = f" (repacked from {source.stat().st_size / 1e6:.1f} MB)"
        else:
            target.write_bytes(source.read_bytes())
        sizes[target.name] = target.stat().st_size
        print(f"{target.name:80s} {sizes[target.name] / 1e6:7.2f} MB{note}")
    wheels = sum(sizes.values())
    print(f"wheels: {len(sizes)} files, {wheels / 1e6:.1f} MB ({wheels / 2**20:.1f} MiB)")
    if not args.no_gl:
        debs = download_gl(args.gl)
        sizes |= {f"{args.gl.name}/{deb.name}": deb.stat().st_size for deb in debs}
        print(f"GL loaders: {len(debs)} .deb files, {sum(d.stat().st_size for d in debs) / 1e6:.2f} MB")
    tree = tree_bytes()
    print(f"tree (tracked and untracked, not ignored): {tree / 1e6:.1f} MB ({tree / 2**20:.1f} MiB)")
    try:
        total = check_size(sizes, tree)
    except ValueError as error:
        raise SystemExit(f"too large for one call: {error}") from None
    print(f"total: {total / 2**20:.1f} MiB of {LIMIT_BYTES / 2**20:.0f} MiB "
          f"({(LIMIT_BYTES - total) / 2**20:.1f} MiB to spare)")


if __name__ == "__main__":
    main()
