"""machine-text: typography normalization, language routing, chunk spans, bad input, held-out dev text."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
import torch

from detector.config import PROJECT_ROOT
from detector.detectors.text.chunking import chunk_text, sentence_spans
from detector.detectors.text.length import LengthAlignment
from detector.detectors.text.model import MachineTextDetector, _pad
from detector.detectors.text.normalize import detect_language, normalize_typography, normalize_with_origins
from detector.engine.bundle import ModelBundle
from detector.engine.interface import Finding, NotApplicable
from detector.media.text import normalize_text
from detector.media.types import TextMedia

BUNDLE = PROJECT_ROOT / "models" / "machine-text"


def test_typography_shortcuts_are_normalized_away():
    fancy = "It\u2019s \u201cdone\u201d \u2014 really\u2026\n\n\u00a0Next\u2003line"
    plain = "It's \"done\" - really... Next line"
    assert normalize_typography(fancy) == plain
    assert normalize_typography(plain) == plain
    assert normalize_typography("\uff21\uff22\uff23\uff11\uff12\uff13") == "ABC123"        # full-width forms (NFKC)


@pytest.mark.parametrize("text, language", [
    ("The committee said that it would publish the report on Monday, and it was welcomed by the board.", "en"),
    ("深度伪造检测是一个重要的研究方向，它需要大量的数据和计算资源。", "zh"),
    ("Der Ausschuss sagte, dass er den Bericht am Montag veröffentlichen werde.", "other"),
    ("Комитет заявил, что опубликует доклад в понедельник.", "other"),
    ("12345 67890 !!! ???", "other"),
    ("", "other"),
])
def test_language_detection(text, language):
    assert detect_language(text)[0] == language


def test_chunks_cover_sentences_with_offsets():
    text = "First sentence here. Second one!\n\nThird paragraph without a stop\n中文第一句。中文第二句！"
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["First sentence here.", "Second one!", "Third paragraph without a stop",
                                             "中文第一句。", "中文第二句！"]
    chunks, total = chunk_text(text, max_chars=40, max_chunks=10)
    assert total == len(chunks) == 3
    assert all(c.end - c.start <= 40 for c in chunks)
    assert chunks[0].start == 0 and text[chunks[-1].start:chunks[-1].end].endswith("中文第二句！")
    # a huge text keeps at most max_chunks chunks, spread from start to end
    chunks, total = chunk_text("word " * 200_000, max_chars=500, max_chunks=8)
    assert len(chunks) == 8 and total > 1000 and chunks[-1].start > 800_000


def test_normalized_characters_point_back_to_their_origin():
    text = "  It\u2019s\u2026 cafe\u0301\n\n\u201cok\u201d \u2014\u2014 \uff21\u200b!"
    normalized, origins = normalize_with_origins(text)
    assert normalized == normalize_typography(text) == "It's... caf\u00e9 \"ok\" - A!"
    assert origins == [2, 3, 4, 5, 6, 6, 6, 7, 8, 9, 10, 11, 13, 15, 16, 17, 18, 19, 20, 22, 23, 25]


@pytest.fixture(scope="module")
def detector() -> MachineTextDetector:
    if ModelBundle.missing_files(BUNDLE):
        pytest.skip(f"no machine-text bundle at {BUNDLE}")
    det = MachineTextDetector(ModelBundle.load("machine-text", BUNDLE), torch.device("cpu"))
    for module in det.modules():
        module.eval()
    return det


def score(detector: MachineTextDetector, text: str, explain: bool = True) -> Finding | NotApplicable:
    prepared = detector.preprocess(TextMedia(text=text, encoding="direct"))
    if isinstance(prepared, NotApplicable):
        return prepared
    with torch.inference_mode():
        outputs = detector.forward(detector.collate(prepared.units))
    return detector.summarize(prepared, list(outputs), explain)


@pytest.mark.parametrize("text", ["", "   \n\t  ", "\x00\x01\x02\ufffd\ufffd\x7f" * 50, "hello"])
def test_empty_garbage_and_tiny_text_are_not_applicable(detector, text):
    result = detector.preprocess(TextMedia(text=text, encoding="direct"))
    assert isinstance(result, NotApplicable) and result.reason


def test_unsupported_language_is_not_applicable_with_language(detector):
    result = detector.preprocess(TextMedia(text="Der Ausschuss sagte, dass er den Bericht am Montag veröffentlichen "
                                                "werde, und die Opposition kritisierte das. " * 5, encoding="direct"))
    assert isinstance(result, NotApplicable)
    assert result.evidence["language"] == "other" and "not supported" in result.reason


def test_short_english_is_refused_and_reason_names_threshold(detector):
    result = detector.preprocess(TextMedia(text="The cat sat on the mat and looked at the door.", encoding="direct"))
    assert isinstance(result, NotApplicable) and "too short" in result.reason


def test_length_alignment_puts_human_logits_of_every_length_on_one_scale():
    rng = np.random.default_rng(0)
    lengths = np.repeat([32, 48, 64, 96], 4000)
    ratio = np.log(lengths / 128)
    logits = -1.0 - 0.8 * ratio + 0.5 * np.exp(-0.4 * ratio) * rng.standard_normal(len(lengths))
    alignment = LengthAlignment.fit(logits, lengths, reference_tokens=128)
    assert alignment.mean_slope == pytest.approx(-0.8, abs=0.05)
    assert alignment.log_sd_slope == pytest.approx(-0.4, abs=0.05)
    assert alignment.human_mean == pytest.approx(-1.0, abs=0.05) and alignment.shortest_tokens == 32
    aligned = alignment.apply(logits, lengths)
    for n in (32, 48, 64, 96):
        assert aligned[lengths == n].mean() == pytest.approx(-1.0, abs=0.05)
        assert aligned[lengths == n].std() == pytest.approx(0.5, abs=0.03)
    assert alignment.apply(np.array([0.3, 2.0]), np.array([128, 400])) == pytest.approx([0.3, 2.0])
    assert alignment.apply(np.array([1.0]), np.array([5])) == pytest.approx(alignment.apply(np.array([1.0]),
                                                                                            np.array([32])))
    with pytest.raises(ValueError, match="two lengths"):
        LengthAlignment.fit(np.zeros(30), np.array([64] * 25 + [96] * 5), reference_tokens=128)


def test_short_chunk_logits_are_aligned_before_they_are_averaged(detector, monkeypatch):
    alignment = detector.languages["en"].length_alignment
    assert alignment is not None, "the shipped English head has a length alignment"
    text = ("The council met on Tuesday to discuss the new budget, which includes money for roads, schools and the "
            "library. Several residents spoke against the plan, saying that taxes were already too high. The mayor "
            "said the vote would wait until May, when the state announces its grants for the coming year. Until "
            "then, the library will keep its winter hours and the road crews will only fill the worst potholes.")
    aligned = score(detector, text)
    assert isinstance(aligned, Finding), aligned
    monkeypatch.setattr(detector.languages["en"], "length_alignment", None)
    plain = score(detector, text)
    tokens = aligned.evidence["tokens"]
    assert aligned.evidence["chunks_scored"] == 1 and tokens < alignment.reference_tokens
    assert aligned.evidence["raw_logit"] == pytest.approx(
        float(alignment.apply(np.array([plain.evidence["raw_logit"]]), np.array([tokens]))[0]), abs=1e-3)
    assert aligned.evidence["raw_logit"] != pytest.approx(plain.evidence["raw_logit"], abs=1e-3)


def test_lone_surrogates_and_mixed_scripts_give_a_finding(detector):
    english = ("The council met on Tuesday to discuss the new budget, which includes money for roads, schools and "
               "the library. Several residents spoke against the plan, saying that taxes were already too high. ")
    odd = english * 2 + "\ud800 混合的中文句子。 Ελληνικά κείμενα. " + english
    finding = score(detector, odd)
    assert isinstance(finding, Finding)
    assert finding.evidence["language"] == "en" and 0.0 <= finding.score <= 1.0
    spans = finding.evidence["spans"]
    assert spans and all(0 <= s["start"] < s["end"] <= len(odd) for s in spans)
    assert list(finding.evidence["features"]) == detector.bundle.config["languages"]["en"]["head_inputs"]


def test_typography_and_layout_do_not_change_the_score(detector):
    plain = ("The council met on Tuesday to discuss the new budget - which includes money for roads, schools and the "
             "library. \"It's a fair plan,\" the mayor said... Several residents spoke against it, saying that taxes "
             "were already too high and that the library could wait another year. The vote was put off until the next "
             "meeting in May.")
    fancy = plain.replace(" - ", " \u2014 ").replace("\"It's", "\u201cIt\u2019s").replace('plan,"', "plan,\u201d")
    fancy = fancy.replace("...", "\u2026").replace(". ", ".\n\n\u00a0")
    assert fancy != plain and normalize_typography(fancy) == plain
    scores = [score(detector, text) for text in (plain, fancy)]
    assert all(isinstance(s, Finding) and s.evidence["chunks_scored"] == 1 for s in scores)
    assert scores[0].score == pytest.approx(scores[1].score, abs=1e-4)


def test_spans_show_what_the_lm_read(detector):
    """A chunk longer than the LM's 128 tokens is cut short: its span ends where the read tokens end (in the original
    text, curly quotes and all), and the evidence counts the characters left unread."""
    tokenizer = detector.languages["en"].tokenizer
    clause = "the committee\u2019s \u201creport\u201d cost 1,234,567 "             # digits: a token each
    text = "Members said that " + clause * 8 + "and nothing else."      # one sentence, one chunk of ~400 characters
    finding = score(detector, text)
    [span] = finding.evidence["spans"]
    assert span["tokens"] == detector.chunk_tokens and 0 < span["end"] < len(text)
    read = detector.preprocess(TextMedia(text=text, encoding="direct")).context["chunks"][0]
    assert normalize_typography(text[span["start"]:span["end"]]) == tokenizer.decode(read.token_ids,
                                                                                  skip_special_tokens=True)
    assert finding.evidence["unread_characters"] == len(text) - span["end"] > 0
    assert span["text"] == text[span["start"]:span["end"]]             # the passage itself, for callers without text
    short = "Members said that " + clause * 4 + "and nothing else."
    finding = score(detector, short)
    assert finding.evidence["unread_characters"] == 0 and finding.evidence["spans"][0]["end"] == len(short)


def test_ten_megabyte_text_is_capped_in_chunks(detector):
    rng = random.Random(0)
    words = "the of and to in a is that for it as was with be by on not he this are or his from at which".split()
    text = " ".join(rng.choice(words) for _ in range(2_000_000))[:10_000_000] + "."
    prepared = detector.preprocess(TextMedia(text=text, encoding="direct"))
    assert len(prepared.units) == detector.max_chunks
    assert prepared.context["chunks_total"] > detector.max_chunks
    assert all(len(u["input_ids"]) <= detector.chunk_tokens for u in prepared.units)


def test_chinese_text_is_routed_to_the_chinese_model(detector):
    if "zh" not in detector.languages:
        pytest.skip("Chinese LM package not installed")
    text = ("国务院新闻办公室今天举行新闻发布会，介绍了今年前三季度的经济运行情况。发言人表示，"
            "国民经济总体保持恢复态势，主要指标稳中有升，就业形势基本稳定。") * 2
    finding = score(detector, normalize_text(text))
    assert isinstance(finding, Finding) and finding.evidence["language"] == "zh"
    assert finding.evidence["spans"] and finding.evidence["tokens"] >= detector.languages["zh"].min_tokens
    # its own calibration, thresholds set on Chinese validation humans: a pooled one is set by English
    zh, en = detector.languages["zh"].calibration, detector.languages["en"].calibration
    assert finding.calibration is zh and zh is not en
    assert finding.evidence["thresholds"]["synthetic"] == round(zh.synthetic_threshold, 4)
    assert "(zh)" in zh.fitted_on and zh.target_fpr == en.target_fpr


def test_short_chinese_gets_no_confident_verdict_through_scan(tmp_path):
    """Between `min_tokens` and `confident_tokens` a Chinese text is scored but `uncertain` whatever its score (its
    humans are flagged far above the target there); a longer one gets the verdict its score gives. Thresholds are
    moved in a copy of the bundle so that both scores would be `synthetic`."""
    import json
    import shutil

    from detector.config import EngineConfig, ScanConfig
    from detector.media.types import MediaInput
    from detector.scan import Scanner

    if ModelBundle.missing_files(BUNDLE):
        pytest.skip(f"no machine-text bundle at {BUNDLE}")
    bundle = shutil.copytree(BUNDLE, tmp_path / "machine-text")
    config = json.loads((bundle / "config.json").read_text())
    if "zh" not in config["languages"]:
        pytest.skip("no Chinese model in the bundle")
    zh = config["languages"]["zh"]
    assert zh["min_tokens"] < zh["confident_tokens"]                  # the shipped bundle has such a range
    zh["calibration"]["synthetic_threshold"] = zh["calibration"]["authentic_threshold"] = 0.0
    (bundle / "config.json").write_text(json.dumps(config))
    sentence = "国务院新闻办公室今天举行新闻发布会，介绍了今年前三季度的经济运行情况。"
    scanner = Scanner(ScanConfig(models_dir=tmp_path, engine=EngineConfig(batch_size=2, threads=1, device="cpu")))
    short, long = scanner.scan([MediaInput.from_text(sentence * 3, "short"),
                                MediaInput.from_text(sentence * 8, "long")])
    if short.verdict == "not_applicable":
        pytest.skip(f"Chinese LM package not installed: {short.reason}")
    assert zh["min_tokens"] <= short.evidence["tokens"] < zh["confident_tokens"] <= long.evidence["tokens"]
    assert short.score is not None and short.verdict == "uncertain" and "whatever the score" in short.reason
    assert long.verdict == "synthetic"


def test_held_out_dev_text_ranks_machine_above_human(detector, dev_data):
    """A source never trained on (split_dev holds out all of seqxgpt-doc): GPT-3 (gpt3re) documents vs its humans."""
    with open(dev_data / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["source"] == "seqxgpt-doc"]
    texts = {}
    for generator in ("human", "gpt3re"):
        paths = [dev_data / r["path"] for r in rows if r["generator"] == generator][:20]
        texts[generator] = [t for t in (p.read_text(encoding="utf-8") for p in paths) if len(t) >= 600][:6]
    # the first ~120 tokens of each, all chunks in one batch, keep the test fast
    prepared = [detector.preprocess(TextMedia(text=normalize_text(t[:600]), encoding="direct"))
                for t in texts["human"] + texts["gpt3re"]]
    units = [u for p in prepared for u in p.units]
    with torch.inference_mode():
        outputs = list(detector.forward(detector.collate(units)))
    findings, start = [], 0
    for p in prepared:
        findings.append(detector.summarize(p, outputs[start:start + len(p.units)], explain=False))
        start += len(p.units)
    assert len(findings) == 12 and all(isinstance(f, Finding) for f in findings)
    values = np.array([f.score for f in findings])
    assert values[6:].mean() > values[:6].mean()


@pytest.mark.parametrize("precision, tolerance", [("float32", 1e-3), ("bfloat16", 0.05)])
def test_chunk_scores_do_not_depend_on_batch_padding(detector, precision, tolerance):
    """A chunk padded next to a longer one (LM and encoder ids) gets the inputs and logit it gets alone (in bfloat16,
    where the matrix shapes change the rounding, up to that rounding)."""
    bundle = ModelBundle.load("machine-text", BUNDLE)
    bundle.config["lm_precision"] = precision
    detector = MachineTextDetector(bundle, torch.device("cpu"))          # the LMs are shared, so this is cheap
    paragraph = ("The committee said on Monday that it would publish its report next week, after a delay of several "
                 "months. Members declined to say what it would recommend, but several hinted at changes to the "
                 "rules. The chairman is expected to present it to parliament before the summer recess.")
    units = detector.preprocess(TextMedia(text=paragraph * 3, encoding="direct")).units
    assert len(units) == 2 and len(units[1]["input_ids"]) < len(units[0]["input_ids"])
    with torch.inference_mode():
        together = detector.forward(detector.collate(units))[1]
        alone = detector.forward(detector.collate(units[1:]))[0]
    assert torch.allclose(together, alone, atol=tolerance)


def test_likelihood_only_statistics_match_the_full_pass(smollm2):
    """The shortcut a head reading only likelihood features takes (no pass over the whole distribution) gives the same
    likelihood features."""
    from detector.detectors.text.features import LIKELIHOOD_FEATURES, lm_statistics

    lm, tokenizer = smollm2
    encoded = tokenizer(["The committee said on Monday that it would publish its report next week.",
                         "Members declined to say what it would recommend, but several hinted at changes."],
                        padding=True, return_tensors="pt")
    with torch.inference_mode():
        full = lm_statistics(lm, encoded["input_ids"], encoded["attention_mask"])
        quick = lm_statistics(lm, encoded["input_ids"], encoded["attention_mask"], needed=LIKELIHOOD_FEATURES)
    width = len(LIKELIHOOD_FEATURES)
    assert torch.allclose(full[:, :width], quick[:, :width], atol=1e-4)
    assert full[:, width:].abs().sum() > 0 and quick[:, width:].abs().sum() == 0


@pytest.fixture(scope="module")
def smollm2():
    """SmolLM2-135M-Instruct and its tokenizer: the LM readings (statistics, chat context, probe layers, precision)
    that the recipe's candidates and generation use are tested on a small LM with a chat template."""
    from detector.detectors.text.lm import load_lm

    return load_lm("smollm2-135m-instruct")


def _two_padded_rows(tokenizer) -> tuple[list[list[int]], torch.Tensor, torch.Tensor]:
    """Token ids of a sentence and of a shorter one, and the two right-padded into one batch with its mask."""
    rows = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in
            ("The committee said on Monday that it would publish its report next week.", "Members declined.")]
    return (rows, *_pad([torch.tensor(row) for row in rows]))


def test_chat_context_conditions_but_is_not_scored(smollm2):
    """With a chat context, each row's mean log-likelihood is that of its own tokens after the context, padded or not."""
    from detector.detectors.text.features import LIKELIHOOD_FEATURES, lm_statistics, read_context
    from detector.detectors.text.lm import chat_context_ids

    lm, tokenizer = smollm2
    context = chat_context_ids(tokenizer, "Write about this topic.")
    assert tokenizer.decode(context).rstrip().endswith("assistant")
    rows, ids, mask = _two_padded_rows(tokenizer)
    with torch.inference_mode():
        batched = lm_statistics(lm, ids, mask, needed=LIKELIHOOD_FEATURES,
                                context=read_context(lm, context))[:, 0]
        for i, row in enumerate(rows):
            sequence = torch.tensor([context + row])
            log_probs = lm(input_ids=sequence).logits[0, :-1].float().log_softmax(-1)
            own = log_probs[len(context) - 1:].gather(-1, sequence[0, len(context):, None]).mean()
            assert abs(float(batched[i]) - float(own)) < 1e-3
        plain = lm_statistics(lm, ids, mask, needed=LIKELIHOOD_FEATURES)[:, 0]
    assert not torch.allclose(batched, plain, atol=1e-2)


def test_probe_reads_a_middle_layer_without_running_the_layers_above(smollm2):
    """pooled_hidden stops the decoder early, yet gives the full model's layer output, averaged over each row's own
    tokens (padding and the chat context excluded), and leaves the shared LM whole (config, layers, final norm)."""
    from detector.detectors.text.features import (LIKELIHOOD_FEATURES, lm_readings, lm_statistics, pooled_hidden,
                                                  read_context)
    from detector.detectors.text.lm import chat_context_ids

    lm, tokenizer = smollm2
    depth = lm.config.num_hidden_layers
    context = chat_context_ids(tokenizer, "Write about this topic.")
    rows, ids, mask = _two_padded_rows(tokenizer)
    shared = read_context(lm, context)
    calls = []
    hooks = [layer.register_forward_hook(lambda *_: calls.append(1)) for layer in lm.model.layers]
    try:
        with torch.inference_mode():
            pooled_hidden(lm, ids, mask, [9], shared)
    finally:
        for hook in hooks:
            hook.remove()
    assert len(calls) == 9                                       # layers 1..9, not 30
    with torch.inference_mode():
        pooled = pooled_hidden(lm, ids, mask, [4, 9], shared)
        assert pooled.shape == (2, 2, lm.config.hidden_size)
        for i, row in enumerate(rows):
            states = lm.model(input_ids=torch.tensor([context + row]), output_hidden_states=True).hidden_states
            for j, layer in enumerate((4, 9)):
                assert torch.allclose(pooled[i, j], states[layer][0, len(context):].mean(0), atol=1e-3)
        # read in the statistics pass instead (what the detector does when a head reads both)
        statistics, in_pass = lm_readings(lm, ids, mask, needed=LIKELIHOOD_FEATURES, context=shared,
                                          pooled_layer=9)
        assert torch.allclose(in_pass, pooled[:, 1], atol=1e-3)
        assert torch.allclose(statistics, lm_statistics(lm, ids, mask, needed=LIKELIHOOD_FEATURES,
                                                        context=shared), atol=1e-4)
    assert lm.config.num_hidden_layers == depth and len(lm.model.layers) == depth
    assert isinstance(lm.model.norm, type(lm.model.layers[0].input_layernorm))      # its norm is intact
    with pytest.raises(ValueError, match="layers 1 to"):
        pooled_hidden(lm, ids, mask, [depth])                   # the last layer's output is normed: not read


def test_chinese_probe_runs_gemmas_first_layers_and_never_its_lm_head(detector):
    """The Chinese head reads Gemma's probe alone: a finding runs Gemma's layers up to the probe's, not the layers
    above nor the 262k-token LM head, and the pooled state is the full model's layer output averaged over each
    row's own tokens (Gemma's sliding-window layers included)."""
    from detector.detectors.text.features import pooled_hidden

    if "zh" not in detector.languages:
        pytest.skip("Chinese LM package not installed")
    lang = detector.languages["zh"]
    assert lang.lm_key == "gemma3-270m" and lang.probe is not None and lang.lm_context is None
    calls = {"layers": 0, "head": 0}
    hooks = [layer.register_forward_hook(lambda *_: calls.__setitem__("layers", calls["layers"] + 1))
             for layer in lang.lm.model.layers]
    hooks.append(lang.lm.lm_head.register_forward_hook(lambda *_: calls.__setitem__("head", calls["head"] + 1)))
    text = ("国务院新闻办公室今天举行新闻发布会，介绍了今年前三季度的经济运行情况。发言人表示，"
            "国民经济总体保持恢复态势，主要指标稳中有升，就业形势基本稳定。") * 2
    try:
        finding = score(detector, normalize_text(text))
    finally:
        for hook in hooks:
            hook.remove()
    assert isinstance(finding, Finding) and finding.evidence["language_model"] == "gemma3-270m"
    assert set(finding.evidence["features"]) == {"lm_probe_logit"}
    assert calls == {"layers": lang.probe.layer, "head": 0}
    rows = [lang.tokenizer(t)["input_ids"] for t in ("深度伪造检测需要大量的数据。", "数据很多。")]
    ids, mask = _pad([torch.tensor(row) for row in rows])
    with torch.inference_mode():
        pooled = pooled_hidden(lang.lm, ids, mask, [lang.probe.layer])[:, 0]
        for i, row in enumerate(rows):
            states = lang.lm.model(input_ids=torch.tensor([row]), output_hidden_states=True).hidden_states
            assert torch.allclose(pooled[i], states[lang.probe.layer][0].mean(0), atol=1e-3)


def test_bfloat16_lm_passes_stay_close_to_float32(smollm2):
    """lm_autocast runs bfloat16 only where the hardware computes it natively; there, the LM readings (mean
    log-likelihood, a probe layer's mean state, after a context read at the same precision) barely move."""
    from detector.detectors.text.features import LIKELIHOOD_FEATURES, lm_readings, read_context
    from detector.detectors.text.lm import chat_context_ids, lm_autocast

    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match="precision"):
        lm_autocast("float16", cpu)
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert isinstance(lm_autocast("bfloat16", cpu), torch.autocast) == native
    assert not isinstance(lm_autocast("float32", cpu), torch.autocast)
    lm, tokenizer = smollm2
    context = chat_context_ids(tokenizer, "Write about this topic.")
    _, ids, mask = _two_padded_rows(tokenizer)
    readings = {}
    with torch.inference_mode():
        for precision in ("float32", "bfloat16"):
            readings[precision] = lm_readings(lm, ids, mask, needed=LIKELIHOOD_FEATURES, pooled_layer=9,
                                              context=read_context(lm, context, precision), precision=precision)
    (statistics, pooled), (statistics_bf16, pooled_bf16) = readings.values()
    assert (statistics_bf16[:, 0] - statistics[:, 0]).abs().max() < 0.05          # nats per token
    assert torch.nn.functional.cosine_similarity(pooled, pooled_bf16).min() > 0.999
    assert pooled_bf16.dtype == torch.float32
    assert torch.equal(statistics, statistics_bf16) != native                    # bfloat16 ran where it is native


def test_document_evaluation_scores_through_scan(detector):
    """training.text_documents reads scores from `scan` (the served path): the same score as the detector's own
    steps, and no score (NaN) for a text the detector refuses as too short."""
    from training.text_documents import document_scores

    text = ("The committee met on Tuesday to review the budget for the coming year. Members raised concerns about "
            "the cost of the new library, which has grown by a third since the plans were approved. The chair said "
            "the council would publish a revised estimate next month, after talks with the builders. Residents who "
            "attended the meeting asked for the opening hours to be kept as they are. ") * 2
    scores, synthetic = document_scores([text, "Too short to judge."], BUNDLE.parent, batch_size=4, threads=1)
    assert np.isnan(scores[1]) and not synthetic[1]
    finding = score(detector, text, explain=False)
    assert scores[0] == pytest.approx(finding.score, abs=1e-5)
    assert synthetic[0] == (finding.score >= finding.calibration.synthetic_threshold)


def test_length_rows_cut_pairs_and_a_lowered_floor_scores_short_texts(tmp_path, monkeypatch):
    """training.text_documents --words / --min-tokens: pairs cut to exactly N words (shorter pairs left out), and a
    bundle copy whose floor lets a text under the shipped `min_tokens` be scored."""
    from training.text_data import TextDoc
    from training.text_documents import document_scores, evaluate_documents, with_floor

    def doc(label: int, group: str, words: int) -> TextDoc:
        text = " ".join(f"{group}{label}w{i}" for i in range(words)) + "."
        return TextDoc(text=text, label=label, lang="en", source="fast-detect-gpt",
                       generator="gpt-4" if label else "human-xsum", group=group)

    docs = [doc(1, "a", 40), doc(0, "a", 50), doc(1, "b", 20), doc(0, "b", 60)]
    captured = {}

    def fake_scores(texts, models_dir, batch_size, threads):
        captured["texts"] = texts
        return np.linspace(0, 1, len(texts)), np.zeros(len(texts), dtype=bool)

    monkeypatch.setattr("training.text_documents.document_scores", fake_scores)
    result = evaluate_documents(docs, ["gpt-4"], 10, tmp_path, cut_to=30)
    monkeypatch.undo()
    assert result["rows"][0]["pairs"] == 1                                   # the 20-word pair is left out
    assert sorted(len(t.split()) for t in captured["texts"]) == [30, 30]
    short = "The cat sat on the mat and looked at the door for a while before it went to sleep."
    lowered = with_floor(BUNDLE.parent, 4, tmp_path / "models")
    assert np.isnan(document_scores([short], BUNDLE.parent, batch_size=1, threads=1)[0][0])
    assert 0.0 <= document_scores([short], lowered, batch_size=1, threads=1)[0][0] <= 1.0
