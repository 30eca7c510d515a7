"""The one-call GPU run of ``benchmarks/device/``, checked without a network or a GPU: the scripts parse,
the size check refuses a bundle that would not travel, the repacked wheel leaves out exactly what it should,
the README's ``carry`` list names what the bundle makes, and run.sh leaves its log when a stage fails."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

DEVICE = Path(__file__).resolve().parents[1] / "benchmarks" / "device"
sys.path.insert(0, str(DEVICE))

import bundle  # noqa: E402
import cuda_tests  # noqa: E402

MIB = 2**20


def test_the_scripts_parse() -> None:
    done = subprocess.run(["bash", "-n", str(DEVICE / "run.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for script in sorted(DEVICE.glob("*.py")):
        compile(script.read_text(), str(script), "exec")


@pytest.mark.parametrize(("wheels_mib", "tree_mib", "fits"), [
    ([46.0], 7.1, True),  # the measured bundle
    ([63.0], 1.0, True),  # exactly the limit
    ([36.7, 56.4, 6.6], 7.1, False),  # metaworld and dm_control as published
    ([60.0], 4.5, False),
])
def test_the_size_check_refuses_what_one_call_cannot_carry(wheels_mib: list[float], tree_mib: float,
                                                            fits: bool) -> None:
    sizes = {f"w{k}.whl": int(size * MIB) for k, size in enumerate(wheels_mib)}
    if fits:
        assert bundle.check_size(sizes, int(tree_mib * MIB)) == sum(sizes.values()) + int(tree_mib * MIB)
    else:
        with pytest.raises(ValueError, match=r"MiB over the 64 MiB one call carries \(largest: w"):
            bundle.check_size(sizes, int(tree_mib * MIB))


def test_versions_come_from_the_lock_file_where_it_names_them(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("# a comment\nFarama_Notifications==0.0.7\nPyOpenGL == 3.1.9\nmujoco==3.3.0  # pinned\n"
                    "dm_control @ file:///somewhere\n")
    versions = bundle.pinned_versions(lock)
    assert versions["farama-notifications"] == "0.0.7" and versions["pyopengl"] == "3.1.9"
    assert versions["dm-control"] == bundle.DEFAULT_VERSIONS["dm-control"]  # not a pin: the default
    assert versions.keys() == bundle.DEFAULT_VERSIONS.keys()
    assert bundle.pinned_versions(tmp_path / "missing.txt") == bundle.DEFAULT_VERSIONS
    assert "labmaze" not in versions  # only dm_control.locomotion, which the bundle drops, imports it


def _wheel(path: Path, files: dict[str, str]) -> Path:
    record = "".join(f"{name},sha256=x,{len(text)}\n" for name, text in files.items())
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr("dm_control-1.0.28.dist-info/RECORD", record)
    return path


def test_repacking_drops_the_unused_folders_and_their_record_lines(tmp_path: Path) -> None:
    files = {"dm_control/suite/walker.py": "from dm_control import mujoco\n",
             "dm_control/locomotion/arenas/mazes.py": "import labmaze\n",
             "dm_control/suite/dog_assets/dog.stl": "mesh", "dm_control/suite/all_domains.png": "png"}
    source = _wheel(tmp_path / "in.whl", files)
    target = tmp_path / "out.whl"
    assert bundle.repack(source, target, bundle.DROP["dm-control"]) == []
    with zipfile.ZipFile(target) as wheel:
        assert wheel.namelist() == ["dm_control/suite/walker.py", "dm_control-1.0.28.dist-info/RECORD"]
        assert wheel.read("dm_control-1.0.28.dist-info/RECORD").decode().splitlines() == [
            "dm_control/suite/walker.py,sha256=x,30"]


def test_repacking_names_a_kept_file_that_imports_what_was_dropped(tmp_path: Path) -> None:
    files = {"dm_control/suite/maze.py": "x = 1\nimport labmaze\n",
             "dm_control/suite/ok.py": "# labmaze is not imported here\n",
             "dm_control/suite/loco.py": "from dm_control.locomotion import x\n"}
    source = _wheel(tmp_path / "in.whl", files)
    offending = bundle.repack(source, tmp_path / "out.whl", bundle.DROP["dm-control"])
    assert offending == ["dm_control/suite/maze.py", "dm_control/suite/loco.py"]


def test_exclude_adds_each_folder_once(tmp_path: Path) -> None:
    bundle.exclude(["/.whl/", "/.gl/"], root=tmp_path)
    bundle.exclude(["/.whl/"], root=tmp_path)
    assert (tmp_path / ".git" / "info" / "exclude").read_text().splitlines() == ["/.whl/", "/.gl/"]


def test_the_readme_carries_what_the_bundle_makes_and_run_sh_reads() -> None:
    readme = (DEVICE / "README.md").read_text()
    lists = [json.loads(found) for found in re.findall(r"carry\W*(\[[^\]]*\])", readme)]
    assert lists and all(carry == list(bundle.CARRY) for carry in lists)
    run_sh = (DEVICE / "run.sh").read_text()
    assert ".whl/*.whl" in run_sh and ".gl/*.deb" in run_sh
    assert "bash benchmarks/device/run.sh $OUT" in readme and "python3 benchmarks/device/bundle.py" in readme
    for timeout in re.findall(r"timeout_s\W*(\d+)", readme):
        assert int(timeout) <= 600


class _Item:
    """Just enough of a pytest item for ``cuda_tests.needs_cuda``."""

    def __init__(self, *marks: Any) -> None:
        self.marks = [m.mark for m in marks]

    def iter_markers(self, name: str) -> list[Any]:
        return [m for m in self.marks if m.name == name]


@pytest.mark.parametrize("cuda_missing", [True, False])
def test_the_plugin_keeps_exactly_the_tests_that_skip_without_cuda(cuda_missing: bool) -> None:
    needs = _Item(pytest.mark.skipif(cuda_missing, reason="needs a CUDA device"))
    inverse = _Item(pytest.mark.skipif(not cuda_missing, reason="checks the error where CUDA is missing"))
    other = _Item(pytest.mark.skipif(cuda_missing, reason="needs MuJoCo"))
    as_kwarg = _Item(pytest.mark.skipif(condition=cuda_missing, reason="needs CUDA"))
    plain = _Item(pytest.mark.slow)
    keep = [cuda_tests.needs_cuda(item, cuda_missing) for item in (needs, inverse, other, as_kwarg, plain)]
    assert keep == [True, False, False, True, False]


def test_run_sh_leaves_its_log_and_summary_when_stages_fail(tmp_path: Path) -> None:
    """No wheels and a spent budget: the install is reported missing, later stages skipped, exit non-zero."""
    out = tmp_path / "out"
    env = {**os.environ, "BUDGET": "12", "STAGES": "versions", "SITE": str(tmp_path / "site")}
    done = subprocess.run(["bash", str(DEVICE / "run.sh"), str(out), "--device", "cpu"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    log = (out / "run.log").read_text()
    assert "install: no .whl/*.whl" in log and "budget of 12 s is spent" in log
    rows = [line.split("\t") for line in (out / "summary.tsv").read_text().splitlines()]
    assert rows[0] == ["stage", "exit", "seconds"]
    assert [row[:2] for row in rows[1:]] == [["install", "missing"], ["ipl_core", "skipped"],
                                            ["versions", "skipped"]]


def test_run_sh_refuses_a_missing_output_folder() -> None:
    done = subprocess.run(["bash", str(DEVICE / "run.sh")], capture_output=True, text=True)
    assert done.returncode == 2 and "usage:" in done.stderr
