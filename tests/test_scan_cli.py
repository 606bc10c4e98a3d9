"""The scan pipeline and the `detector` CLI: JSON contract, input order, per-item errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from detector.config import EngineConfig, ScanConfig
from detector.engine import registry
from detector.engine.calibration import Calibration
from detector.engine.interface import Detector, Finding, Prepared
from detector.media import MediaInput
from detector.scan import Scanner

CONTRACT = {"path": str, "modality": (str, type(None)), "verdict": str, "score": (float, type(None)),
            "reason": (str, type(None)), "evidence": dict, "provenance": dict, "model": (dict, type(None)),
            "elapsed_ms": float}
VERDICTS = {"synthetic", "authentic", "uncertain", "not_applicable", "error"}


def run_cli(*args: str, stdin: bytes | None = None, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "detector", *args], input=stdin, capture_output=True,
                          env=env, timeout=600)


def assert_contract(row: dict) -> None:
    for key, kind in CONTRACT.items():
        assert key in row, key
        assert isinstance(row[key], kind), (key, row[key])
    assert row["verdict"] in VERDICTS
    if row["score"] is not None:
        assert 0.0 <= row["score"] <= 1.0
    if row["verdict"] in ("not_applicable", "error"):
        assert row["reason"]
    if row["model"] is not None:
        assert {"name", "version"} <= set(row["model"]) <= {"name", "version", "caveat"}


@pytest.fixture(scope="module")
def mixed_inputs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("mixed")
    plain = folder / "gradient.png"
    Image.fromarray(np.tile(np.arange(256, dtype=np.uint8), (64, 1))).convert("RGB").save(plain)
    tone = folder / "tone.wav"
    soundfile.write(tone, 0.1 * np.sin(np.linspace(0, 2000, 16000)).astype(np.float32), 16000)
    empty = folder / "empty.jpg"
    empty.write_bytes(b"")
    truncated = folder / "truncated.png"
    truncated.write_bytes(plain.read_bytes()[:100])
    garbage = folder / "garbage.bin"
    garbage.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    story = folder / "story.txt"
    story.write_text("The harbour was quiet that morning. " * 20, encoding="utf-8")
    return [plain, empty, tone, folder / "missing.mp4", truncated, garbage, story, folder]


def test_cli_json_gives_one_object_per_input_in_order(mixed_inputs):
    proc = run_cli("scan", "--json", "--batch-size", "2", *map(str, mixed_inputs), "--text", "hello there")
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in mixed_inputs] + ["<text:0>"]
    for row in rows:
        assert_contract(row)
    chatter = [line for line in proc.stderr.decode().splitlines()
               if "Loading weights" in line or "pkg_resources" in line]
    assert not chatter, chatter                    # libraries' loading bars and warnings stay out of the output
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["gradient.png"]["modality"] == "image"
    assert by_name["gradient.png"]["verdict"] == "not_applicable"          # no face (or no weights): never a guess
    assert by_name["tone.wav"]["modality"] == "audio"
    assert by_name["story.txt"]["modality"] == "text"
    for name, code in [("empty.jpg", "empty"), ("missing.mp4", "unreadable"), ("truncated.png", "truncated"),
                       ("garbage.bin", "unsupported"), (mixed_inputs[-1].name, "unreadable")]:
        assert by_name[name]["verdict"] == "error", name
        assert by_name[name]["error_code"] == code, (name, by_name[name])
    assert by_name["gradient.png"]["sha256"] and by_name["story.txt"]["sha256"]


def test_cli_recursive_stdin_and_table(mixed_inputs, tmp_path):
    folder = mixed_inputs[-1]
    proc = run_cli("scan", "--json", "--recursive", str(folder))
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert sorted(Path(r["path"]).name for r in rows) == sorted(p.name for p in folder.iterdir())
    proc = run_cli("scan", "--json", "-", stdin="从标准输入读取的中文文本。".encode("gb18030"))
    (row,) = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert row["path"] == "<stdin>" and row["modality"] == "text"
    proc = run_cli("scan", str(mixed_inputs[0]), str(mixed_inputs[1]))
    table = proc.stdout.decode().splitlines()
    assert proc.returncode == 0 and table[0].startswith("VERDICT") and len(table) == 4
    assert "error" in table[2] and "empty" in table[2]
    assert table[3].startswith("caveat, face-forgery ")                     # the shipped card's warning, once


def test_cli_table_gives_a_videos_soundtrack_its_own_row(tmp_path):
    from conftest import tone, write_video

    video = write_video(tmp_path / "clip.mp4", "libx264", "mp4", frames=30, fps=10, audio=tone(3, 16000))
    proc = run_cli("scan", str(video))
    table = proc.stdout.decode().splitlines()
    assert proc.returncode == 0 and len(table) == 5, table
    assert table[1].startswith("not_applicable") and "video" in table[1] and "(no face found)" in table[1]
    assert table[2].startswith("not_applicable") and f"{video} (soundtrack)" in table[2] and "no speech" in table[2]
    assert table[3].startswith("caveat, face-forgery ") and table[4].startswith("caveat, synthetic-voice ")


@pytest.mark.parametrize("args", [["scan"], ["scan", "--batch-size", "0", "x"], ["scan", "--device", "tpu", "x"],
                                  ["scan", "--synthetic-threshold", "1.5", "x"], ["nonsense"]])
def test_cli_usage_errors_exit_2(args):
    assert run_cli(*args).returncode == 2


def test_cli_models_and_version():
    proc = run_cli("models", "--json")
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert {r["name"] for r in rows} >= {"face-forgery", "synthetic-voice", "machine-text"}
    for row in rows:
        assert isinstance(row["weights_present"], bool)
        assert (row["version"] is not None) == row["weights_present"]
        assert row["caveat"] is None or row["weights_present"]
    assert next(r for r in rows if r["name"] == "synthetic-voice")["caveat"].startswith("Experimental")
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.decode().startswith("detector ")
    assert "face-forgery" in version.stdout.decode()


def test_detector_without_weights_is_not_applicable(tmp_path, mixed_inputs):
    config = ScanConfig(models_dir=tmp_path, engine=EngineConfig(threads=1))
    results = Scanner(config).scan([mixed_inputs[0], mixed_inputs[2], MediaInput.from_text("some words " * 50)])
    for result in results:
        assert result.verdict == "not_applicable"
        assert "no weights" in result.reason and result.score is None


# ---- the score path, with a tiny detector defined by the test (shipped code has none) --------------------------

class _TextLength(Detector):
    """Stands in for a text model: one unit per paragraph, raw score = words / 10 - 3."""

    name = "tiny-text"
    modalities = ("text",)

    def preprocess(self, media):
        return Prepared(units=[torch.tensor(len(p.split()) / 10 - 3.0) for p in media.text.split("\n\n")])

    def forward(self, batch):
        return batch

    def summarize(self, prepared, outputs, explain):
        raw = max(float(o) for o in outputs)
        return Finding(score=float(self.calibration.probability(raw)), evidence={"units": len(outputs)})


def test_scores_become_verdicts_through_calibration_and_thresholds(tmp_path, monkeypatch):
    bundle_dir = tmp_path / "tiny-text"
    bundle_dir.mkdir()
    (bundle_dir / "config.json").write_text(json.dumps({"version": "7", "files": {}, "caveat": "toy model"}))
    Calibration("temperature", {"temperature": 1.0}, synthetic_threshold=0.9,
                authentic_threshold=0.1).save(bundle_dir / "calibration.json")
    monkeypatch.setattr(registry, "_SPECS", {"tiny-text": registry.DetectorSpec(
        "tiny-text", ("text",), f"{__name__}:_TextLength", "test only")})
    monkeypatch.setattr(registry, "_LOADED", {})
    texts = ["word " * 60, "word " * 30, "word " * 5, "word " * 5 + "\n\n" + "word " * 70]
    results = Scanner(ScanConfig(models_dir=tmp_path, engine=EngineConfig(batch_size=3, threads=1))).scan(
        [MediaInput.from_text(t, f"t{i}") for i, t in enumerate(texts)])
    assert [r.verdict for r in results] == ["synthetic", "uncertain", "authentic", "synthetic"]
    assert results[0].model == {"name": "tiny-text", "version": "7", "caveat": "toy model"}
    assert results[3].evidence == {"units": 2}
    assert results[0].score == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-6)
    for r in results:
        assert_contract(json.loads(r.to_json()))
    strict = Scanner(ScanConfig(models_dir=tmp_path, synthetic_threshold=0.99, engine=EngineConfig(threads=1)))
    assert strict.scan([MediaInput.from_text(texts[0])])[0].verdict == "uncertain"


def test_scan_probes_a_container_once(tmp_path, monkeypatch):
    """`scan` sniffs each input once and hands the result to `decode`: no second PyAV probe of the container."""
    import importlib

    from conftest import write_video

    sniff_module = importlib.import_module("detector.media.sniff")

    video = write_video(tmp_path / "clip.mp4", "libx264", frames=12)
    probes = []
    real_probe = sniff_module._probed
    monkeypatch.setattr(sniff_module, "_probed", lambda *a, **k: probes.append(a) or real_probe(*a, **k))
    result = Scanner(ScanConfig(models_dir=tmp_path, engine=EngineConfig(threads=1))).scan([video])[0]
    assert result.modality == "video" and result.verdict == "not_applicable"
    assert len(probes) == 1


class _BrokenText(_TextLength):
    """A detector whose preprocessing has a bug on some inputs."""

    def preprocess(self, media):
        if "boom" in media.text:
            raise RuntimeError("bug in preprocessing")
        return super().preprocess(media)


def test_a_detector_bug_fails_only_its_item_and_keeps_its_path(tmp_path, monkeypatch):
    bundle_dir = tmp_path / "tiny-text"
    bundle_dir.mkdir()
    (bundle_dir / "config.json").write_text(json.dumps({"version": "1", "files": {}}))
    Calibration("temperature", {"temperature": 1.0}).save(bundle_dir / "calibration.json")
    monkeypatch.setattr(registry, "_SPECS", {"tiny-text": registry.DetectorSpec(
        "tiny-text", ("text",), f"{__name__}:_BrokenText", "test only")})
    monkeypatch.setattr(registry, "_LOADED", {})
    inputs = [MediaInput.from_text("word " * 40, "fine"), MediaInput.from_text("boom " * 40, "broken")]
    fine, broken = Scanner(ScanConfig(models_dir=tmp_path, engine=EngineConfig(threads=1))).scan(inputs)
    assert fine.verdict in ("synthetic", "authentic", "uncertain") and fine.path == "fine"
    assert broken.verdict == "error" and broken.error_code == "internal" and broken.path == "broken"
    assert "bug in preprocessing" in broken.reason and broken.modality == "text"
