"""A facility image's package set, read from the image's own environment files.

A facility names its files in hub-config/ (`image_files:`), in the order the image applies them;
a later file's entry for a package replaces an earlier one's, and the facility's `packages:` is
applied last, as an override. Each file is one of:

    pip list --format=json     [{"name": ..., "version": ...}, ...]
    pip freeze                 name==version lines (.txt)
    conda environment.yml      dependencies: conda specs, and a `pip:` list of PEP 508 specs
    conda list --json          [{"name", "version", "channel", "build_string", ...}, ...]
    casabook facility snapshot {"casabook_snapshot": 1, "python", "pip", "conda", "modules", ...}

Versions are exact where the file gives them (`==`, a pip or conda list, a snapshot). Packages that
conda alone provides (xrootd, the conda build of htcondor, ndcctools, nodejs, ...) and `git+https://`
pins cannot be built from the package registries: they are provided by the image, not built here,
and each says why. Imports map to distributions with the image's own map where a snapshot gives
one, else with casabook.imports' table and this machine's map.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from casabook.errors import CasabookError

SNAPSHOT_FORMAT = 1

# conda packages with no PyPI distribution here: system libraries, non-Python tools, and conda
# builds of what PyPI ships differently. Each is provided by the image and not built.
CONDA_ONLY: dict[str, str] = {
    "xrootd": "conda's XRootD client (C++ with Python bindings)",
    "htcondor": "the conda build of HTCondor (the job system the facility's Dask workers run on)",
    "ndcctools": "conda's cctools (TaskVine / Work Queue)",
    "nodejs": "Node.js, for JupyterLab extensions",
    "code-server": "VS Code in the browser, a Node.js application",
    "gxx": "the C++ compiler",
    "voms": "the VOMS proxy tools (C++)",
    "ca-policy-lcg": "the WLCG certificate authorities",
    "curl": "the curl command",
    "gperftools": "Google's C++ profiler",
    "root": "ROOT (conda's C++ build with PyROOT)",
    "root_base": "ROOT (conda's C++ build with PyROOT)",
    "python": "the image's Python itself",
    "pip": "the installer itself",
    "git": "the git command",
    "openjdk": "Java",
    "compilers": "conda's compiler toolchain",
    "graphviz": "the Graphviz programs (conda's graphviz is not PyPI's Python binding)",
    "jq": "the jq command (conda's jq is not PyPI's Python binding)",
    **{tool: "a system tool or C library" for tool in (
        "wget", "unzip", "zip", "vim", "rsync", "make", "pkg-config", "freetype", "libpng", "zeromq", "hdf5", "tbb",
        "zlib")},
}
# conda names whose PyPI distribution is named otherwise.
CONDA_TO_PYPI: dict[str, str] = {
    "pytables": "tables",
    "python-xxhash": "xxhash",
    "python-graphviz": "graphviz",
    "matplotlib-base": "matplotlib",
    "py-xgboost": "xgboost",
    "pytorch": "torch",
}


def normalise(name: str) -> str:
    """PEP 503 normalisation, so 'Func_ADL.uproot' and 'func-adl-uproot' compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Package:
    """One distribution of the image, as its files give it."""

    name: str                  # normalised
    spec: str = ""             # the version specifier ('==2.4.2', '>=5.6.2', '' for any)
    source: str = ""           # the file (or 'packages') it came from
    not_built: str = ""        # why it is provided by the image and not built here ('' when built)
    resolved: str = ""         # the version installed here, where the files give none exactly

    @property
    def pinned(self) -> str | None:
        """The exact version, when the files give one."""
        match = re.fullmatch(r"===?([^,;\s*]+)", self.spec)
        return match[1] if match else None

    @property
    def version(self) -> str | None:
        """The image's version: as its files pin it, else as their range resolved here (None: unknown)."""
        return self.pinned or self.resolved or None

    @property
    def install(self) -> str:
        return f"{self.name}{self.spec}"


@dataclass(frozen=True)
class Image:
    """A facility image's packages, Python version and module map."""

    packages: dict[str, Package] = field(default_factory=dict)
    python: str = ""                                      # e.g. '3.12.5'; '' when the files do not say
    modules: dict[str, list[str]] = field(default_factory=dict)  # module -> distributions (a snapshot's map)
    files: tuple[str, ...] = ()

    def get(self, name: str) -> Package | None:
        return self.packages.get(normalise(name))

    def built(self) -> list[Package]:
        return [p for p in self.packages.values() if not p.not_built]

    def not_built(self) -> list[Package]:
        return [p for p in self.packages.values() if p.not_built]

    def with_installed(self, versions: dict[str, str], modules: dict[str, list[str]]) -> Image:
        """The image as built here: what its files declare, plus what their dependencies brought (at the
        versions installed), with the built environment's module map where the image has none of its own."""
        packages = dict(self.packages)
        for name, version in versions.items():
            key = normalise(name)
            if key not in packages:
                packages[key] = Package(key, "", "a dependency, resolved here", resolved=version)
            elif packages[key].pinned is None and not packages[key].not_built:
                packages[key] = replace(packages[key], resolved=version)
        return replace(self, packages=packages, modules=self.modules or modules)


# --- the formats ---------------------------------------------------------------------------------


class FileMistake(ValueError):
    """A line of an environment file that cannot be read (the caller names the file)."""


def _conda_spec(text: str) -> tuple[str, str]:
    """A conda match spec ('numpy', 'htcondor==24.0.22', 'dask<2025.4.0', 'python=3.12') as (name, PEP 440 spec)."""
    text = text.split("::")[-1].split("[")[0].strip()
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", text)
    if not match:
        raise FileMistake(f"{text!r} is not a conda package spec")
    name, spec = match[1], match[2].replace(" ", "")
    if spec.startswith("=="):  # name==version, or name==version=build
        spec = "==" + spec[2:].split("=")[0]
    elif spec.startswith("=") or spec[:1].isdigit():  # conda's fuzzy `=1.2` (and `1.2`) means 1.2.*
        version = spec.lstrip("=").split("=")[0]
        spec = "==" + (version if version.endswith("*") else version + ".*")
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        raise FileMistake(f"{text!r}: {spec!r} is not a version range casabook can read") from None
    return name, spec


def _git_name(text: str) -> str:
    match = re.search(r"#egg=([A-Za-z0-9_.\-]+)", text) or re.search(r"/([A-Za-z0-9_.\-]+?)(?:\.git)?(?:@[^/]*)?$", text)
    return match[1] if match else text


def _pip_entry(text: str, source: str) -> Package:
    """A PEP 508 line of a pip list (environment.yml's `pip:`, a requirements or freeze file)."""
    text = text.split(" #")[0].strip()
    if text.startswith(("git+", "-e ", "hg+", "svn+")) or " @ " in text:
        name = text.split(" @ ")[0] if " @ " in text else _git_name(text)
        return Package(normalise(name), "", source, "a pin of a source repository (git+https:// and the like): "
                                                   "only the package registries are reachable here")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as error:
        raise FileMistake(f"{text!r} is not a PEP 508 requirement ({error})") from None
    if requirement.url:
        return Package(normalise(requirement.name), "", source, "installed from a URL, not from a registry")
    return Package(normalise(requirement.name), str(requirement.specifier), source)


def _conda_only(name: str) -> str:
    reason = CONDA_ONLY.get(normalise(name), "")
    return f"provided by the image, not built here: {reason}" if reason else ""


def _conda_package(name: str, spec: str, source: str) -> Package:
    pypi = CONDA_TO_PYPI.get(normalise(name), name)
    return Package(normalise(pypi), spec, source, _conda_only(name))


def read_environment_yml(data: Any, source: str) -> list[Package]:
    if not isinstance(data, dict) or not isinstance(data.get("dependencies"), list):
        raise FileMistake("expected a conda environment file: a mapping with a 'dependencies' list")
    packages = []
    for entry in data["dependencies"]:
        if isinstance(entry, dict) and set(entry) == {"pip"}:
            packages.extend(_pip_entry(str(line), source) for line in entry["pip"] or [])
        elif isinstance(entry, str):
            name, spec = _conda_spec(entry)
            packages.append(_conda_package(name, spec, source))
        else:
            raise FileMistake(f"dependencies: {entry!r} is neither a conda spec nor a 'pip:' list")
    return packages


def read_pip_freeze(text: str, source: str) -> list[Package]:
    packages = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            packages.append(_pip_entry(line, source))
    return packages


def read_pip_list(entries: list[Any], source: str) -> list[Package]:
    packages = []
    for entry in entries:
        if not isinstance(entry, dict) or "name" not in entry or "version" not in entry:
            raise FileMistake(f"{entry!r}: expected pip list entries with 'name' and 'version'")
        reason = _conda_only(entry["name"])
        if entry.get("editable_project_location"):
            reason = "installed in the image from a source folder (editable), not from a registry"
        elif entry.get("url"):
            reason = f"installed in the image from {entry['url']}, not from a registry"
        packages.append(Package(normalise(entry["name"]), f"=={entry['version']}", source, reason))
    return packages


def read_conda_list(entries: list[Any], source: str) -> list[Package]:
    """`conda list --json`: pip-installed entries as they are; conda entries are Python distributions
    when their build string says so (conda-forge's 'py312h...' and noarch 'pyh...'), else libraries."""
    packages = []
    for entry in entries:
        if not isinstance(entry, dict) or "name" not in entry or "version" not in entry:
            raise FileMistake(f"{entry!r}: expected conda list entries with 'name' and 'version'")
        name, version = entry["name"], entry["version"]
        if entry.get("channel") == "pypi":
            packages.append(Package(normalise(name), f"=={version}", source, _conda_only(name)))
        elif str(entry.get("build_string", "")).startswith("py") or normalise(name) in CONDA_TO_PYPI:
            packages.append(_conda_package(name, f"=={version}", source))
        elif normalise(name) in CONDA_ONLY:
            packages.append(_conda_package(name, f"=={version}", source))
    return packages


def read_snapshot(data: dict[str, Any], source: str) -> tuple[list[Package], str, dict[str, list[str]]]:
    if data.get("casabook_snapshot") != SNAPSHOT_FORMAT:
        raise FileMistake(f"casabook_snapshot: expected format {SNAPSHOT_FORMAT}, got {data.get('casabook_snapshot')!r}")
    packages = read_pip_list(data.get("pip") or [], source)
    conda_only = {p.name for p in read_conda_list(data.get("conda") or [], source) if p.not_built}
    packages = [replace(p, not_built=p.not_built or (_conda_only(p.name) if p.name in conda_only else ""))
                for p in packages]
    modules = {str(k): [str(v) for v in values] for k, values in (data.get("modules") or {}).items()}
    return packages, str(data.get("python") or ""), modules


# --- one file, then the layers -------------------------------------------------------------------


@dataclass(frozen=True)
class ImageFile:
    packages: list[Package]
    python: str = ""
    modules: dict[str, list[str]] = field(default_factory=dict)


def read_image_file(path: Path, display: str) -> ImageFile:
    """One environment file, its format told by its content."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CasabookError("file-missing", f"no image file {display}", file=display) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CasabookError("file-unreadable", f"cannot read {display}: {error}", file=display) from None
    try:
        if path.suffix in (".yml", ".yaml"):
            from casabook.yamlfile import read_yaml

            data = read_yaml(path, display).data
            if isinstance(data, dict) and "casabook_snapshot" in data:
                return ImageFile(*read_snapshot(data, display))
            packages = read_environment_yml(data, display)
            python = next((p.spec for p in packages if p.name == "python"), "")
            return ImageFile(packages, python.lstrip("=").removesuffix(".*"))
        if path.suffix == ".json":
            data = json.loads(text)
            if isinstance(data, dict):
                return ImageFile(*read_snapshot(data, display))
            if isinstance(data, list) and data and isinstance(data[0], dict) and "build_string" in data[0]:
                return ImageFile(read_conda_list(data, display))
            if isinstance(data, list):
                return ImageFile(read_pip_list(data, display))
            raise FileMistake("expected a pip list (--format=json), a conda list (--json) or a casabook snapshot")
        return ImageFile(read_pip_freeze(text, display))
    except (FileMistake, ValueError) as error:
        raise CasabookError("bad-image-file", f"{error}", file=display) from None


def layered(files: list[ImageFile], names: list[str], overrides: dict[str, str], not_built: dict[str, str],
            python: str = "") -> Image:
    """The files applied in order, then the overrides (`packages:`) and the facility's not-built list."""
    packages: dict[str, Package] = {}
    modules: dict[str, list[str]] = {}
    for image_file in files:
        for package in image_file.packages:
            previous = packages.get(package.name)
            if previous is not None and not package.spec and previous.spec and not package.not_built:
                package = replace(package, spec=previous.spec)  # a bare name later does not loosen an earlier pin
            packages[package.name] = package
        python = image_file.python or python
        modules.update(image_file.modules)
    for name, spec in overrides.items():
        key = normalise(name)
        reason = packages[key].not_built if key in packages else _conda_only(name)
        packages[key] = Package(key, spec, "packages", reason)
    for name, reason in not_built.items():
        key = normalise(name)
        packages[key] = replace(packages.get(key, Package(key)), not_built=f"not built here: {reason}")
    return Image(packages=packages, python=python, modules=modules, files=tuple(names))
