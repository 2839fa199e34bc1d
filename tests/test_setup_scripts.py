"""scripts/lib/ensure-uv.bash: uv on a machine that has none, without `pip install` into the
system's Python, which Debian 12 refuses (PEP 668, "externally-managed-environment").

The fallback runs for real: `python3 -m venv` with the machine's own Python (Debian's
/usr/bin/python3 where it has venv), then that venv's pip installs uv from a wheel server on
127.0.0.1, as it would from PyPI. The wheel is this uv's own binary packed as a wheel (no uv
wheel is kept on the machine, and the index is out of reach). `python3` on PATH is a stand-in
that logs each call and refuses `pip install` with Debian's error; `apt-get` is a stand-in too.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.wheel_server import serving

ROOT = Path(__file__).resolve().parent.parent
HELPER = ROOT / "scripts" / "lib" / "ensure-uv.bash"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# Debian's python3, as far as this test needs it: `pip install` refused (its words), and, with
# FAKE_NO_ENSUREPIP set, no ensurepip until apt-get has installed python3-venv.
FAKE_PYTHON = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
if [ "$1 $2 $3" = "-m pip install" ]; then
  echo "error: externally-managed-environment" >&2
  echo "This environment is externally managed" >&2
  exit 1
fi
if [ -n "${FAKE_NO_ENSUREPIP:-}" ] && [ ! -e "$FAKE_LOG.venv-installed" ] \\
   && [ "$*" = "-c import ensurepip" ]; then
  echo "ModuleNotFoundError: No module named 'ensurepip'" >&2
  exit 1
fi
exec REAL_PYTHON "$@"
"""
FAKE_APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
case " $* " in *" install "*python3-venv*) touch "$FAKE_LOG.venv-installed" ;; esac
exit 0
"""


def real_python() -> str:
    """A Python whose `-m venv` works: Debian's own if it has python3-venv, else the one
    under this test's virtual environment."""
    base = getattr(sys, "_base_executable", "")
    for candidate in ("/usr/bin/python3", base):
        if candidate and Path(candidate).is_file():
            check = [candidate, "-c", "import ensurepip, venv"]
            if subprocess.run(check, capture_output=True).returncode == 0:
                return candidate
    pytest.skip("no Python with venv and ensurepip on this machine")


def uv_binary() -> Path:
    """The uv executable itself (`uv run` sets UV; shims such as pyenv's are scripts)."""
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            with open(candidate, "rb") as file:
                if file.read(4) == b"\x7fELF":
                    return Path(candidate)
    pytest.skip("no uv executable to pack into a wheel")


def pack_uv_wheel(binary: Path, folder: Path) -> Path:
    """A wheel of `binary` as uv's own wheels carry it: `uv-X.data/scripts/uv`."""
    version = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    name = f"uv-{version}"
    files = {
        f"{name}.data/scripts/uv": binary.read_bytes(),
        f"{name}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: uv\nVersion: {version}\n",
        f"{name}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: nnote-tests\nRoot-Is-Purelib: false\n"
            "Tag: py3-none-any\n"
        ),
    }
    wheel = folder / f"{name}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
            info = zipfile.ZipInfo(path)
            mode = 0o755 if path.endswith("/scripts/uv") else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, data)
        record.append(f"{name}.dist-info/RECORD,,")
        archive.writestr(f"{name}.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


@pytest.fixture(scope="module")
def uv_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A find-links page on 127.0.0.1 that offers the uv wheel."""
    folder = tmp_path_factory.mktemp("uv-index")
    pack_uv_wheel(uv_binary(), folder)
    with serving(folder) as url:
        yield url


class Machine:
    """A fresh machine as ensure_uv sees it: no uv on PATH, Debian-like python3 and apt-get."""

    def __init__(self, root: Path, index_url: str, *, ensurepip: bool = True) -> None:
        self.root = root
        self.home = root / "opt" / "nnote-uv"
        self.bin = root / "usr-local-bin"
        self.log = root / "calls.log"
        self.log.touch()
        fakes = root / "fakes"
        fakes.mkdir()
        for name, text in {
            "python3": FAKE_PYTHON.replace("REAL_PYTHON", real_python()),
            "apt-get": FAKE_APT_GET,
        }.items():
            (fakes / name).write_text(text)
            (fakes / name).chmod(0o755)
        if shutil.which("uv", path=SYSTEM_PATH):
            pytest.skip(f"uv is installed system-wide ({shutil.which('uv', path=SYSTEM_PATH)})")
        self.path = f"{fakes}:{SYSTEM_PATH}"
        self.env = {
            "PATH": self.path,
            "HOME": str(root),
            "LANG": "C.UTF-8",
            "FAKE_LOG": str(self.log),
            "NNOTE_UV_HOME": str(self.home),
            "NNOTE_UV_BIN": str(self.bin),
            # pip's own settings: the wheel server instead of PyPI, nothing else.
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": index_url,
            "PIP_TRUSTED_HOST": "127.0.0.1",
        }
        if not ensurepip:
            self.env["FAKE_NO_ENSUREPIP"] = "1"

    def ensure_uv(self) -> subprocess.CompletedProcess[str]:
        script = f'set -euo pipefail; source "{HELPER}"; ensure_uv; command -v uv; uv --version'
        return subprocess.run(
            ["bash", "-c", script], env=self.env, capture_output=True, text=True, timeout=240
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()


def assert_no_system_pip_install(machine: Machine) -> None:
    pip_installs = [call for call in machine.calls() if "pip install" in call]
    assert not pip_installs, f"pip install into the system's python3: {pip_installs}"


def test_a_machine_without_uv_gets_it_from_a_venv_of_its_own(tmp_path: Path, uv_index: str):
    machine = Machine(tmp_path, uv_index)
    run = machine.ensure_uv()
    assert run.returncode == 0, run.stderr
    where, version = run.stdout.splitlines()[-2:]
    assert where == str(machine.bin / "uv")
    assert version.startswith("uv ")
    assert (machine.bin / "uv").resolve() == (machine.home / "bin" / "uv").resolve()
    assert_no_system_pip_install(machine)
    assert not [call for call in machine.calls() if call.startswith("apt-get")]
    assert "-m venv " + str(machine.home) in machine.calls()

    # A later shell (scripts/test after scripts/setup, or the user's) finds it on PATH.
    later = subprocess.run(
        ["uv", "--version"],
        env={"PATH": f"{machine.bin}:{SYSTEM_PATH}"},
        capture_output=True,
        text=True,
    )
    assert later.stdout == version + "\n"

    # Run again: nothing to install, and python3 is not called.
    machine.log.write_text("")
    again = machine.ensure_uv()
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == version
    assert machine.calls() == []


def test_without_python3_venv_it_installs_that_from_debian_first(tmp_path: Path, uv_index: str):
    machine = Machine(tmp_path, uv_index, ensurepip=False)
    run = machine.ensure_uv()
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1].startswith("uv ")
    apt = [call for call in machine.calls() if call.startswith("apt-get")]
    assert apt == ["apt-get update -qq", "apt-get install -y -qq python3-venv"]
    assert_no_system_pip_install(machine)


def test_uv_already_on_path_is_used_as_it_is(tmp_path: Path):
    machine = Machine(tmp_path, "http://127.0.0.1:9/")
    present = tmp_path / "present"
    present.mkdir()
    (present / "uv").write_text("#!/bin/sh\necho uv 0.0.0-present\n")
    (present / "uv").chmod(0o755)
    machine.env["PATH"] = f"{present}:{machine.path}"
    run = machine.ensure_uv()
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [str(present / "uv"), "uv 0.0.0-present"]
    assert machine.calls() == []
    assert not machine.home.exists() and not machine.bin.exists()


@pytest.mark.parametrize("script", ["setup", "run"])
def test_setup_and_run_get_uv_from_the_one_helper(script: str):
    text = (ROOT / "scripts" / script).read_text()
    assert "source scripts/lib/ensure-uv.bash\nensure_uv\n" in text
    assert "pip install" not in text
