"""Each facility's package environment, built here from its image's files with uv, cached by their hash.

A facility that names image files gets a virtual environment of its own, made by `uv venv` and
`uv pip install` from the package registries: the packages its image declares, at the image's
versions where its files pin them, minus those the image provides but no registry can (see
casabook.image). Its kernel is registered inside it (share/jupyter/kernels/<kernel>/, pointing at
its python), and the facility's runs use that kernel. A facility without image files (the local
one) runs in this machine's own environment.

uv rather than pip: it resolves and installs a 170-package environment in seconds from a warm
cache and links files from its cache instead of copying them, so a second facility sharing most
packages costs little disk. Python itself cannot be fetched here (uv's Python builds come from
GitHub, not a registry): every environment uses this machine's Python, and the report says so
beside the image's version.

Environments live under <cache>/envs/<hash> (casabook.data.default_cache_dir). A build is complete
once its manifest (casabook-environment.json: Python, installed versions, module map) is written,
last and atomically; a folder without one is a build that stopped and is made again.
"""

from __future__ import annotations

import fcntl
import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casabook.atomic import write_text
from casabook.errors import CasabookError
from casabook.image import Image, normalise
from casabook.model import Facility

ENV_FORMAT = 1
MANIFEST = "casabook-environment.json"
REQUIREMENTS = "casabook-requirements.txt"
# A kernel needs ipykernel; an image file that lists what a session imports may leave it implicit.
KERNEL_PACKAGE = "ipykernel"

_PROBE = """\
import importlib.metadata as m, json, platform, sys
print(json.dumps({"python": platform.python_version(),
                  "versions": {d.metadata["Name"]: d.version for d in m.distributions() if d.metadata["Name"]},
                  "modules": m.packages_distributions()}))
"""


@dataclass(frozen=True)
class Environment:
    """Where a facility's runs execute: its own built environment, or this machine's."""

    key: str                         # the hash of what it was built from; "this-machine" for the project's own
    python: str                      # the Python version it runs
    image_python: str                # the image's Python version, as its files say ('' when they do not)
    versions: dict[str, str]         # normalised distribution -> installed version
    path: Path | None = None         # None: this machine's own environment
    build_s: float | None = None     # how long this build took (None: it was already built)
    kernels: dict[str, dict[str, Any]] = field(default_factory=dict)  # its kernelspecs, by name
    modules: dict[str, list[str]] = field(default_factory=dict)        # module -> distributions installed in it

    def image(self, facility: Facility) -> Image:
        """The facility's image as this environment has it: a built one adds what the declared packages'
        dependencies brought; this machine's is the facility's declared list as it is."""
        return facility.image.with_installed(self.versions, self.modules) if self.path else facility.image

    @property
    def kernel_dir(self) -> Path | None:
        return self.path / "share" / "jupyter" / "kernels" if self.path else None

    @property
    def python_note(self) -> str:
        """What differs from the image: the Python version, which cannot be fetched here."""
        if self.path is None or not self.image_python or self.python.startswith(self.image_python):
            return ""
        return (f"built with this machine's Python {self.python}; the image runs Python {self.image_python} "
                "(Python builds are not in the package registries)")


def this_machine() -> Environment:
    """The environment casabook itself runs in: the local facility's."""
    import importlib.metadata

    versions = {normalise(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
                if d.metadata["Name"]}
    return Environment(key="this-machine", python=platform.python_version(), image_python="", versions=versions)


def default_root() -> Path:
    from casabook.data import default_cache_dir

    return default_cache_dir() / "envs"


def uv_binary() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def requirements(image: Image) -> list[str]:
    """What `uv pip install` gets: the image's buildable packages, and ipykernel for the kernel."""
    wanted = sorted(package.install for package in image.built())
    if image.get(KERNEL_PACKAGE) is None:
        wanted.append(KERNEL_PACKAGE)
    return wanted


def environment_key(image: Image, kernel: str, python: str) -> str:
    import hashlib

    material = json.dumps({"format": ENV_FORMAT, "requirements": requirements(image), "kernel": kernel,
                           "python": python, "uv": _uv_version()}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def _uv_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("uv")


def _read_manifest(path: Path, key: str) -> dict[str, Any] | None:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("key") == key else None


def _environment(path: Path, manifest: dict[str, Any], image: Image, build_s: float | None) -> Environment:
    return Environment(key=manifest["key"], python=manifest["python"], image_python=image.python,
                       versions=manifest["versions"], path=path, build_s=build_s, kernels=manifest["kernels"],
                       modules=manifest["modules"])


def facility_environment(facility: Facility, *, root: Path | None = None, python: str | None = None,
                         status: Any = None) -> Environment:
    """The facility's environment, built if it is not there yet; this machine's for a facility without image files.

    `status(text)` hears what a cold build is doing. A build that fails raises CasabookError naming
    the facility's file and uv's reason, and leaves nothing behind.
    """
    if not facility.image_files:
        return this_machine()
    image = facility.image
    python = python or sys.executable
    version = platform.python_version() if python == sys.executable else subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True).stdout.strip()
    key = environment_key(image, facility.kernel, version)
    root = root or default_root()
    path = root / key
    if (manifest := _read_manifest(path, key)) is not None:
        return _environment(path, manifest, image, None)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another casabook building the same environment: wait for it
        if (manifest := _read_manifest(path, key)) is not None:
            return _environment(path, manifest, image, None)
        started = time.monotonic()
        try:
            manifest = _build(facility, image, path, key, python, status)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return _environment(path, manifest, image, round(time.monotonic() - started, 1))


def _uv(args: list[str], facility: Facility) -> None:
    done = subprocess.run([uv_binary(), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = " ".join(line.strip() for line in done.stderr.strip().splitlines()[-6:])
        raise CasabookError("environment-build", f"uv could not build facility {facility.name!r}'s environment "
                                                 f"from its image files: {reason}",
                            file=f"hub-config/{facility.name}.yml", key="image_files")


def _build(facility: Facility, image: Image, path: Path, key: str, python: str, status: Any) -> dict[str, Any]:
    shutil.rmtree(path, ignore_errors=True)
    say = status or (lambda text: None)
    say(f"{facility.name}: uv venv ({len(image.built())} packages from {len(image.files)} image file(s))")
    _uv(["venv", "--quiet", "--python", python, str(path)], facility)
    write_text(path / REQUIREMENTS, "\n".join(requirements(image)) + "\n")
    say(f"{facility.name}: uv pip install")
    _uv(["pip", "install", "--quiet", "--python", str(path / "bin" / "python"), "-r", str(path / REQUIREMENTS)],
        facility)
    kernel = {"argv": [str(path / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
              "display_name": f"{facility.title} (built here)", "language": "python", "env": {}}
    write_text(path / "share" / "jupyter" / "kernels" / facility.kernel / "kernel.json", json.dumps(kernel, indent=1))
    probe = subprocess.run([str(path / "bin" / "python"), "-c", _PROBE], capture_output=True, text=True, check=True)
    found = json.loads(probe.stdout)
    manifest = {"key": key, "facility_files": list(image.files), "python": found["python"],
                "versions": {normalise(name): version for name, version in found["versions"].items()},
                "modules": found["modules"], "kernels": {facility.kernel: kernel}}
    write_text(path / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))  # last: the build is complete
    return manifest
