"""Catalogue rescans on Ray Data: a folder or manifest of stored files through the shipped models in Ray actors, bank
matches in the rows (not logged as re-uploads), bad files as error rows, and a rerun that only scans what is new or
changed."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from PIL import Image
from sqlalchemy import func, select

from detector import cli
from detector.catalogue import CatalogueJob, catalogue_paths, done_versions, file_version, run_catalogue
from detector.records.api import open_records
from detector.records.tables import MatchEvent

ADMIN = "ada"


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


def rows_by_name(out_dir) -> dict[str, dict]:
    """Each file's latest row, by file name."""
    rows = [json.loads(line) for file in sorted(out_dir.glob("*.json")) for line in file.read_text().splitlines()]
    assert len(rows) == len({(r["path"], r["version"]) for r in rows}), "a file version was scanned twice"
    return {r["path"].rsplit("/", 1)[-1]: r for r in sorted(rows, key=lambda r: r["scanned_at"])}


def test_rescan_finds_banked_copies_reports_bad_files_and_resumes(ray_session, dev_data, tmp_path):
    catalogue = tmp_path / "catalogue"
    (catalogue / "uploads").mkdir(parents=True)
    banked = dev_data / "face/deforgify/fake/fake_1.jpg"
    Image.open(banked).resize((900, 900)).save(catalogue / "uploads/reposted.png")      # a resized copy
    shutil.copy(dev_data / "face/deforgify/real/real_1.jpg", catalogue / "uploads/portrait.jpg")
    shutil.copy(next((dev_data / "speech/librispeech/real").glob("*.flac")), catalogue / "voice.flac")
    (catalogue / "truncated.jpg").write_bytes(banked.read_bytes()[:600])
    (catalogue / ".hidden.jpg").write_bytes(banked.read_bytes())

    database = f"sqlite:///{tmp_path / 'records.db'}"
    records = open_records(database)
    records.add_reviewer({"name": ADMIN, "role": "admin"})
    records.create_bank({"actor": ADMIN, "name": "confirmed"})
    records.add_to_bank({"actor": ADMIN, "bank": "confirmed", "labels": "rumor",
                         **records.hash_media(banked.read_bytes())})
    job = CatalogueJob(out_dir=tmp_path / "results", batch_size=2, database_url=database)

    first = run_catalogue(catalogue, job)
    assert (first["listed"], first["scanned_now"], first["already_done"]) == (4, 4, 0)
    rows = rows_by_name(job.out_dir)
    assert sorted(rows) == ["portrait.jpg", "reposted.png", "truncated.jpg", "voice.flac"]
    assert rows["reposted.png"]["matched_banks"] == ["confirmed"]
    assert json.loads(rows["reposted.png"]["result"])["matches"][0]["label"] == "rumor"
    assert rows["portrait.jpg"]["matched_banks"] == [] and rows["portrait.jpg"]["modality"] == "image"
    assert rows["voice.flac"]["modality"] == "audio" and rows["voice.flac"]["verdict"] != "error"
    assert rows["truncated.jpg"]["verdict"] == "error" and rows["truncated.jpg"]["reason"]
    assert first["bank_matches"] == 1 and first["errors"] == 1
    with records.engine.connect() as conn:          # stored copies found by a rescan are not re-upload hits
        assert conn.scalar(select(func.count()).select_from(MatchEvent)) == 0

    # a new file, and a stored file replaced by a copy of the banked image: only those two are scanned again
    shutil.copy(dev_data / "face/deforgify/real/real_100.jpg", catalogue / "uploads/new.jpg")
    shutil.copy(banked, catalogue / "uploads/portrait.jpg")
    second = run_catalogue(catalogue, job)
    assert (second["listed"], second["scanned_now"], second["already_done"], second["files"]) == (5, 2, 3, 5)
    rows = rows_by_name(job.out_dir)
    assert rows["portrait.jpg"]["matched_banks"] == ["confirmed"] and rows["new.jpg"]["matched_banks"] == []
    assert second["bank_matches"] == 2

    # after a bank grows: hashes only, no model
    banks_only = run_catalogue(catalogue, dataclasses.replace(job, out_dir=tmp_path / "bank-rescan", detect=False))
    assert banks_only["bank_matches"] == 2 and banks_only["errors"] == 1
    rows = rows_by_name(tmp_path / "bank-rescan")
    assert rows["reposted.png"]["matched_banks"] == ["confirmed"]
    assert {r["verdict"] for name, r in rows.items() if name != "truncated.jpg"} == {"not_applicable"}
    assert "only hash banks" in rows["new.jpg"]["reason"] and rows["new.jpg"]["score"] is None


def test_manifests_and_results_cut_short(dev_data, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("a/one.jpg\n\n  b/two.flac  \r\n")
    assert catalogue_paths(listing) == [str(tmp_path / "a/one.jpg"), str(tmp_path / "b/two.flac")]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("id,path\n1,a/one.jpg\n2,/abs/two.mp4\n")
    assert catalogue_paths(manifest) == [str(tmp_path / "a/one.jpg"), "/abs/two.mp4"]
    (tmp_path / "bad.csv").write_text("id,file\n1,a.jpg\n")
    with pytest.raises(ValueError, match="'path' column"):
        catalogue_paths(tmp_path / "bad.csv")
    (tmp_path / "binary.txt").write_bytes(b"\xad\x00\xff" * 100)
    with pytest.raises(ValueError, match="binary.txt: a manifest must be UTF-8"):
        catalogue_paths(tmp_path / "binary.txt")
    (tmp_path / "empty.txt").touch()
    assert catalogue_paths(tmp_path / "empty.txt") == []

    out = tmp_path / "results"
    out.mkdir()
    done = {"path": "/x/done.jpg", "version": "5:1", "scanned_at": "2026-11-29T09:00:00+00:00",
            "verdict": "authentic", "matched_banks": []}
    (out / "block_0.json").write_text(json.dumps(done) + "\n" + '{"path": "/x/cut-sh')   # a crash mid-line: redone
    (out / "notes.json").write_text(json.dumps({"path": "/x/other.jpg", "comment": "not a result row"}))
    assert done_versions(out) == {("/x/done.jpg", "5:1")}
    assert done_versions(tmp_path / "nothing-yet") == set()
    assert file_version(str(tmp_path / "missing.jpg")) == ""
    assert file_version(str(listing)) == f"{listing.stat().st_size}:{listing.stat().st_mtime_ns}"


def test_cli_refuses_a_bad_manifest_clearly(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("id,file\n1,a.jpg\n")
    assert cli.main(["catalogue", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "out")]) == 2
    assert "'path' column" in capsys.readouterr().err
    for bad in (["--actors", "0"], ["--gpus-per-actor", "-1"], ["--banks-only", "--no-records"]):
        with pytest.raises(SystemExit):
            cli.main(["catalogue", str(tmp_path), "--out", str(tmp_path / "out"), *bad])
