"""The batching engine with a tiny torch model defined here (shipped code has no such detector)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from detector.config import EngineConfig
from detector.engine.bundle import ModelBundle
from detector.engine.calibration import Calibration, fit, threshold_at_fpr
from detector.engine.interface import Detector, Finding, NotApplicable, Prepared
from detector.engine.runner import Engine, Job


class MeanBrightness(Detector):
    """Scores each unit by its mean value; items are lists of unit values; a NaN unit fails its batch."""

    name = "tiny"
    modalities = ("image",)

    def __init__(self, bundle, device):
        super().__init__(bundle, device)
        self.net = nn.Conv2d(1, 1, 1, bias=False)
        nn.init.ones_(self.net.weight)
        self.batches: list[int] = []

    def modules(self):
        return [self.net]

    def preprocess(self, media):
        if not media:
            return NotApplicable("nothing to score")
        return Prepared(units=[torch.full((1, 2, 2), float(v)) for v in media], context={"n": len(media)})

    def forward(self, batch):
        self.batches.append(batch.shape[0])
        if torch.isnan(batch).any():
            raise RuntimeError("nan in batch")
        return self.net(batch).mean(dim=(1, 2, 3))

    def summarize(self, prepared, outputs, explain):
        raw = torch.stack(outputs).numpy()
        return Finding(score=float(self.calibration.probability(raw.max())), evidence={"units": raw.tolist()})


@pytest.fixture()
def tiny(tmp_path):
    bundle = ModelBundle(name="tiny", path=tmp_path, config={"version": "t1"},
                         calibration=Calibration("temperature", {"temperature": 1.0}))
    return MeanBrightness(bundle, torch.device("cpu"))


def _prepare_with(detector):
    def prepare(item):
        prepared = detector.preprocess(item)
        if isinstance(prepared, NotApplicable):
            return Job(meta=item)
        return Job(meta=item, detector=detector, prepared=prepared)
    return prepare


def test_results_keep_input_order_and_units_are_batched_across_items(tiny):
    items = [[i] for i in range(10)] + [[1, 2, 3], [], [5]]
    seen = []
    engine = Engine(EngineConfig(batch_size=4, threads=1), observer=lambda name, n, s: seen.append((name, n)))
    done = sorted(engine.run(items, _prepare_with(tiny)), key=lambda d: d.index)
    assert [d.index for d in done] == list(range(len(items)))
    assert [d.meta for d in done] == items
    assert done[11].outcome is None                     # not applicable: no model work
    assert done[10].outcome.evidence["units"] == [1.0, 2.0, 3.0]
    for d, item in zip(done, items):
        if item:
            assert d.outcome.score == pytest.approx(1 / (1 + np.exp(-max(item))))
    assert sum(tiny.batches) == 14 and max(tiny.batches) == 4
    assert tiny.batches.count(4) >= 3                   # units of different items share batches
    assert {name for name, _ in seen} == {"tiny"}


def test_a_failing_batch_fails_only_its_own_items(tiny):
    items = [[1], [float("nan")], [2], [3], [4]]
    engine = Engine(EngineConfig(batch_size=2, threads=1))
    done = {d.index: d for d in engine.run(items, _prepare_with(tiny))}
    assert isinstance(done[0].outcome, RuntimeError) and isinstance(done[1].outcome, RuntimeError)
    assert all(isinstance(done[i].outcome, Finding) for i in (2, 3, 4))


def test_a_failing_prepare_is_reported_on_that_item(tiny):
    def prepare(item):
        if item == "boom":
            raise ValueError("bad item")
        return _prepare_with(tiny)(item)

    done = {d.index: d for d in Engine(EngineConfig(batch_size=3, threads=1)).run([[1], "boom", [2]], prepare)}
    assert isinstance(done[1].outcome, ValueError)
    assert isinstance(done[0].outcome, Finding) and isinstance(done[2].outcome, Finding)


def test_side_work_on_an_item_is_batched_with_other_items_and_fails_alone(tmp_path, tiny):
    bundle = ModelBundle(name="other", path=tmp_path, config={"version": "o1"},
                         calibration=Calibration("temperature", {"temperature": 1.0}))
    other = type("Other", (MeanBrightness,), {"name": "other"})(bundle, torch.device("cpu"))

    def prepare(item):
        main, side = item
        job = Job(meta=item, side={"extra": (other, other.preprocess(side))} if side else {})
        if main:
            job.detector, job.prepared = tiny, tiny.preprocess(main)
        return job

    items = [([1], [5, 6]), ([2], []), ([], [7, 8]), ([3], [float("nan")]), ([], [])]
    done = {d.index: d for d in Engine(EngineConfig(batch_size=2, threads=1)).run(items, prepare)}
    assert done[0].outcome.evidence["units"] == [1.0] and done[0].side["extra"].evidence["units"] == [5.0, 6.0]
    assert done[1].side == {} and done[2].outcome is None and done[2].side["extra"].evidence["units"] == [7.0, 8.0]
    assert isinstance(done[3].outcome, Finding) and isinstance(done[3].side["extra"], RuntimeError)
    assert done[4].outcome is None and done[4].side == {}
    assert tiny.batches == [2, 1] and other.batches == [2, 2, 1]      # units of different items share batches


def test_runs_under_inference_mode(tiny):
    flags = []
    original = tiny.forward

    def spy(batch):
        flags.append(torch.is_inference_mode_enabled())
        return original(batch)

    tiny.forward = spy
    list(Engine(EngineConfig(batch_size=2, threads=1)).run([[1], [2]], _prepare_with(tiny)))
    assert flags == [True]


def test_device_selection_refuses_missing_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError):
        Engine(EngineConfig(device="cuda"))
    assert Engine(EngineConfig(device="auto")).device.type == "cpu"


@pytest.mark.parametrize("method", ["temperature", "platt", "isotonic", "logit"])
def test_calibration_fit_round_trips_and_orders_scores(tmp_path, method):
    rng = np.random.default_rng(0)
    raw = np.concatenate([rng.normal(-2, 1, 500), rng.normal(2, 1, 500)])
    labels = np.r_[np.zeros(500), np.ones(500)]
    calibration = fit(raw, labels, method=method, target_fpr=0.01)
    calibration.save(tmp_path / "calibration.json")
    loaded = Calibration.load(tmp_path / "calibration.json")
    probs = loaded.probability(raw)
    assert np.all((probs >= 0) & (probs <= 1))
    assert probs[labels == 1].mean() > 0.8 and probs[labels == 0].mean() < 0.2
    false_positive_rate = np.mean(probs[labels == 0] >= loaded.synthetic_threshold)
    assert false_positive_rate <= 0.01
    assert loaded.authentic_threshold <= loaded.synthetic_threshold
    assert json.loads((tmp_path / "calibration.json").read_text())["target_fpr"] == 0.01
    if method == "logit":                       # raw log-odds read as they are: only the thresholds were fitted
        assert np.allclose(probs, 1 / (1 + np.exp(-raw)))


def test_threshold_at_fpr_is_exact_on_ties():
    negatives = np.array([0.1] * 98 + [0.9, 0.95])
    t = threshold_at_fpr(negatives, 0.01)
    assert np.mean(negatives >= t) <= 0.01
    assert t <= 0.95 + 1e-9


def test_verdict_bands():
    c = Calibration("temperature", {"temperature": 1.0}, synthetic_threshold=0.8, authentic_threshold=0.3)
    assert c.verdict(0.9) == "synthetic" and c.verdict(0.1) == "authentic" and c.verdict(0.5) == "uncertain"
    assert c.verdict(0.5, synthetic_threshold=0.4) == "synthetic"


def test_pad_rows_fills_a_short_batch_with_zero_rows_and_leaves_full_ones_alone():
    from detector.engine.runner import pad_rows

    batch = torch.arange(12, dtype=torch.float32).reshape(3, 2, 2) + 1
    padded = pad_rows(batch, 5)
    assert padded.shape == (5, 2, 2) and torch.equal(padded[:3], batch) and not padded[3:].any()
    assert pad_rows(batch, 3) is batch and pad_rows(batch, 2) is batch


def test_proportion_interval_brackets_the_rate_and_narrows_with_more_files():
    from detector.metrics import proportion_interval

    low, high = proportion_interval(10, 77)                     # 13% of 77 real faces
    assert 0.06 < low < 10 / 77 < high < 0.23
    wide, narrow = proportion_interval(1, 20), proportion_interval(50, 1000)
    assert wide[1] - wide[0] > narrow[1] - narrow[0]
    assert proportion_interval(0, 50)[0] == 0.0 and proportion_interval(50, 50)[1] == 1.0
    assert all(np.isnan(proportion_interval(0, 0)))


def test_rates_at_threshold_count_each_class_and_say_nan_for_a_missing_one():
    from detector.metrics import rates_at_threshold

    rates = rates_at_threshold(np.array([0, 0, 0, 0, 1, 1]), np.array([True, False, False, False, True, True]))
    assert rates["fpr_at_threshold"] == 0.25 and rates["tpr_at_threshold"] == 1.0
    low, high = rates["fpr_at_threshold_interval"]
    assert low < 0.25 < high
    assert np.isnan(rates_at_threshold(np.array([1, 1]), np.array([True, False]))["fpr_at_threshold"])
