"""The sample data manifest and its fetcher.

The notebooks read real HEP sample files that ship inside package archives on PyPI (the coffea
sdist's tests/samples, the scikit-hep-testdata wheel). `fetch` downloads each pinned archive
once with pip into a cache, extracts the listed files, checks each against the manifest's sha256
and puts them flat into the data folder. A file appears in the data folder only whole and
verified: it is written to a temporary file beside its final place and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from rich.console import Console
from rich.table import Table

from casabook.atomic import leftovers, replacing
from casabook.errors import CasabookError, collect
from casabook.progress import Bar, progress_bar
from casabook.yamlfile import read_yaml

MANIFEST_PATH = Path(__file__).with_name("data_manifest.yml")
ARCHIVES_FOLDER = "archives"
_CHUNK = 1 << 20
_SHA256 = r"^[0-9a-f]{64}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contents(_Strict):
    events: int = Field(ge=0)
    tree: str
    format: str


class Source(_Strict):
    """One package archive on PyPI, pinned by version and by its own sha256."""

    package: str
    version: str
    kind: Literal["sdist", "wheel"]
    archive: str
    archive_sha256: str = Field(pattern=_SHA256)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


class SampleFile(_Strict):
    name: str
    package: str
    version: str
    path: str
    sha256: str = Field(pattern=_SHA256)
    size: int = Field(gt=0)
    contents: Contents
    provenance: str
    licence: str

    @field_validator("name")
    @classmethod
    def _flat_name(cls, name: str) -> str:
        # Notebooks open f"{data_root}/{name}": a separator or ".." would escape the data folder.
        if not name or "/" in name or "\\" in name or name in {".", ".."} or name.startswith("."):
            raise ValueError(f"expected a plain file name, got {name!r}")
        return name


class Manifest(_Strict):
    sources: list[Source]
    files: list[SampleFile]

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        known = {(s.package, s.version) for s in self.sources}
        names: set[str] = set()
        for index, item in enumerate(self.files):
            if (item.package, item.version) not in known:
                raise ValueError(
                    f"files[{index}] ({item.name}): no source {item.package}=={item.version} in sources"
                )
            if item.name in names:
                raise ValueError(f"files[{index}]: the name {item.name} appears twice (the data folder is flat)")
            names.add(item.name)
        return self

    def source_of(self, item: SampleFile) -> Source:
        return next(s for s in self.sources if (s.package, s.version) == (item.package, item.version))


def load_manifest(path: Path | None = None) -> Manifest:
    """The manifest shipped with casabook (or the one at `path`), validated: every mistake at once."""
    path = path or MANIFEST_PATH
    try:
        doc = read_yaml(path)
    except CasabookError as error:
        raise CasabookError("bad-manifest", f"cannot read the data manifest: {error.render()}", file=path) from None
    try:
        return Manifest.model_validate(doc.data)
    except ValidationError as error:
        raise collect(CasabookError("bad-manifest", problem["msg"], file=path, line=doc.line_of(tuple(problem["loc"])),
                                    key=".".join(str(part) for part in problem["loc"]) or None)
                      for problem in error.errors()) from None


def data_checksums(manifest: Manifest | None = None) -> dict[str, str]:
    """name -> sha256 of every sample file: the data part of a validation cache key."""
    manifest = manifest or load_manifest()
    return {item.name: item.sha256 for item in manifest.files}


def default_data_dir(start: Path | None = None) -> Path:
    """$CASABOOK_DATA_DIR, else <workshop repository>/.casabook/data."""
    if os.environ.get("CASABOOK_DATA_DIR"):
        return Path(os.environ["CASABOOK_DATA_DIR"]).expanduser()
    from casabook.model import find_root

    return find_root(start) / ".casabook" / "data"


def default_cache_dir() -> Path:
    """$CASABOOK_CACHE_DIR, else ~/.cache/casabook."""
    if os.environ.get("CASABOOK_CACHE_DIR"):
        return Path(os.environ["CASABOOK_CACHE_DIR"]).expanduser()
    return Path.home() / ".cache" / "casabook"


def fetch(dest: Path | None = None, cache: Path | None = None, console: Console | None = None,
          *, manifest: Manifest | None = None) -> list[Path]:
    """Make every manifest file present and verified in `dest`; return their paths in manifest order.

    Archives come from the cache when there, else from the package index with pip (then kept in
    the cache). Files already present with the right sha256 are left alone, so a second run
    downloads and writes nothing.
    """
    manifest = manifest or load_manifest()
    dest = Path(dest) if dest is not None else default_data_dir()
    cache = Path(cache) if cache is not None else default_cache_dir()
    console = console or Console(stderr=True)
    dest.mkdir(parents=True, exist_ok=True)
    _remove_leftover_parts(dest, manifest)

    missing = [item for item in manifest.files if not _is_verified(dest / item.name, item)]
    if not missing:
        console.print(f"all {len(manifest.files)} sample files present and verified in {dest}")
        return [dest / item.name for item in manifest.files]

    by_source: dict[Source, list[SampleFile]] = {}
    for item in missing:
        by_source.setdefault(manifest.source_of(item), []).append(item)

    downloaded: list[str] = []
    with progress_bar(console, "sample data", total=sum(item.size for item in missing), units="bytes",
                      transient=False) as progress:
        for source, items in by_source.items():
            archive = cache / ARCHIVES_FOLDER / source.archive
            if not archive.is_file():
                _download(source, archive, progress)
                downloaded.append(source.requirement)
            _extract(source, archive, items, dest, progress)

    how = f"downloaded {', '.join(downloaded)}" if downloaded else "from the cache, nothing downloaded"
    console.print(
        f"fetched {len(missing)} sample files ({how}); "
        f"all {len(manifest.files)} present and verified in {dest}"
    )
    return [dest / item.name for item in manifest.files]


def render(console: Console, fmt: str = "table", manifest: Manifest | None = None) -> None:
    """The manifest as a table (for people) or as JSON (for tools): one entry per sample file."""
    manifest = manifest or load_manifest()
    if fmt == "json":
        print(json.dumps([item.model_dump(mode="json") for item in manifest.files], indent=2))
    else:
        console.print(render_table(manifest))


def render_table(manifest: Manifest | None = None) -> Table:
    """The manifest as a table: what each file holds and where it comes from."""
    manifest = manifest or load_manifest()
    table = Table(title="casabook sample data", title_justify="left")
    # The name is what a notebook types: never broken across lines.
    table.add_column("file", no_wrap=True)
    for column in ("events", "tree", "format", "size", "from", "provenance", "licence"):
        table.add_column(column, overflow="fold", justify="right" if column in {"events", "size"} else "left")
    for item in manifest.files:
        table.add_row(
            item.name, str(item.contents.events), item.contents.tree, item.contents.format,
            _human_size(item.size), f"{item.package} {item.version}", item.provenance, item.licence,
        )
    return table


# --- helpers ------------------------------------------------------------------------------------

def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_verified(path: Path, item: SampleFile) -> bool:
    return path.is_file() and path.stat().st_size == item.size and _sha256_of(path) == item.sha256


def _remove_leftover_parts(dest: Path, manifest: Manifest) -> None:
    # A run killed mid-copy leaves its temporary file; it was never renamed, so it is garbage.
    for item in manifest.files:
        for part in leftovers(dest, item.name):
            part.unlink(missing_ok=True)


def _pip_environment() -> dict[str, str]:
    env = dict(os.environ)
    # pip's own progress bar would fight rich's; its version check is noise here.
    env["PIP_PROGRESS_BAR"] = "off"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _download(source: Source, archive: Path, progress: Bar) -> None:
    """Download one pinned archive with pip into the cache; on failure leave the cache unchanged."""
    line = progress.line(f"pip download {source.archive}")
    archive.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=archive.parent))
    try:
        requirements = staging / "requirements.txt"
        # --require-hashes: pip refuses an archive other than the pinned one before it runs any of
        # its code (an sdist's build backend runs to prepare metadata).
        requirements.write_text(f"{source.requirement} --hash=sha256:{source.archive_sha256}\n")
        binary = ["--no-binary", ":all:"] if source.kind == "sdist" else ["--only-binary", ":all:"]
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", *binary, "--require-hashes",
            "-r", str(requirements), "-d", str(staging / "out"),
        ]
        result = subprocess.run(command, capture_output=True, text=True, env=_pip_environment(), check=False)
        saved = staging / "out" / source.archive
        if result.returncode != 0 or not saved.is_file():
            line.remove()
            raise _download_error(source, archive, result)
        # pip wrote the whole archive beside the cache: one rename puts it in place.
        os.replace(saved, archive)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    line.finish(archive.stat().st_size)


def _download_error(source: Source, archive: Path, result: subprocess.CompletedProcess[str]) -> CasabookError:
    output = f"{result.stdout}\n{result.stderr}"
    if "DO NOT MATCH THE HASHES" in output:
        return CasabookError(
            "archive-checksum",
            f"the package index served a {source.archive} whose sha256 is not the pinned "
            f"{source.archive_sha256}: refusing it (check PIP_INDEX_URL and pip's configuration)",
        )
    errors = [line.removeprefix("ERROR: ").strip() for line in output.splitlines() if line.startswith("ERROR:")]
    reason = errors[-1] if errors else (output.strip().splitlines() or [f"pip exited with {result.returncode}"])[-1]
    return CasabookError(
        "registry-unreachable",
        f"cannot download {source.requirement} from the package index ({reason}) and it is not in the "
        f"cache: connect to PyPI or set PIP_INDEX_URL to a reachable mirror and run `casabook data fetch` "
        f"again, or put {source.archive} into {archive.parent}",
    )


def _extract(source: Source, archive: Path, items: list[SampleFile], dest: Path, progress: Bar) -> None:
    wanted = {item.path: item for item in items}
    done: set[str] = set()
    for member_path, stream in _members(source, archive, set(wanted)):
        item = wanted[member_path]
        _write_verified(stream, item, archive, dest, progress)
        done.add(member_path)
    for member_path in set(wanted) - done:
        raise CasabookError(
            "missing-in-archive",
            f"{archive.name} has no member {member_path}: the cached archive may be damaged; "
            f"delete {archive} and run `casabook data fetch` again",
            file=wanted[member_path].name,
        )


def _members(source: Source, archive: Path, paths: set[str]) -> Iterator[tuple[str, IO[bytes]]]:
    try:
        if source.kind == "wheel":
            with zipfile.ZipFile(archive) as wheel:
                present = set(wheel.namelist())
                for path in sorted(paths & present):
                    with wheel.open(path) as stream:
                        yield path, stream
        else:
            # A gzip stream reads front to back: one pass over the members, taking the listed ones.
            with tarfile.open(archive, "r:gz") as sdist:
                for member in sdist:
                    if member.name in paths and member.isfile():
                        stream = sdist.extractfile(member)
                        if stream is not None:
                            yield member.name, stream
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as error:
        raise CasabookError(
            "bad-archive",
            f"cannot read {archive.name} ({error}): delete {archive} and run `casabook data fetch` again",
        ) from None


def _write_verified(stream: IO[bytes], item: SampleFile, archive: Path, dest: Path, progress: Bar) -> None:
    line = progress.line(f"unpacking {item.name}", total=item.size)
    digest = hashlib.sha256()
    # A mismatch raised inside `replacing` removes the copy: only a verified file is ever renamed in.
    with replacing(dest / item.name, "wb") as out:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            line.advance(len(chunk))
            progress.advance(len(chunk))
        if digest.hexdigest() != item.sha256:
            raise CasabookError(
                "checksum-mismatch",
                f"sha256 {digest.hexdigest()} of the copy in {archive.name} is not the manifest's "
                f"{item.sha256}; the cached archive may be damaged: delete {archive} and run "
                f"`casabook data fetch` again",
                file=item.name,
            )


def _human_size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"
