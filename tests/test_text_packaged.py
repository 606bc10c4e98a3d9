"""Text shipped in PyPI packages (training/text_packaged.py): recorded API responses of several providers, whole,
gzipped and streamed, read from archives built here; evalscope predictions with reference answers; human text of
several dataset formats (a pickle that would import code refused); pairing and human rows for the evaluation."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import write_sdist
from training.text_data import TextDoc
from training.text_documents import packaged_chat_pairs, packaged_human_rows
from training.text_packaged import (PackagedTextFile, cassette_replies, chat_family, evalith_replies, human_texts,
                                    packaged_text_docs, prose_language, reply_prose)

ENGLISH = ("The committee reviewed the proposal in detail and concluded that the plan was sound overall. "
           "It recommended a phased rollout, starting with a small pilot in two regions, followed by a broader "
           "launch once the early results were in. Members also asked for clearer reporting on costs and on how "
           "the pilot sites would be chosen, so that the findings could be compared fairly across regions.")
CHINESE = ("根据相关法律规定，劳动者在用人单位连续工作满十年的，劳动者提出或者同意续订劳动合同的，应当订立无固定期限劳动合同。"
           "用人单位违反规定不与劳动者订立无固定期限劳动合同的，自应当订立之日起向劳动者每月支付二倍的工资。"
           "因此，您可以先与单位协商，协商不成的，可以向当地劳动争议仲裁委员会申请仲裁，维护自己的合法权益。")


def _listed(archive: str, inner_path: str, data: bytes, fmt: str, task: str = "", corpus: str = ""
            ) -> PackagedTextFile:
    return PackagedTextFile(package=archive.split("-")[0], archive=archive, inner_path=inner_path,
                            sha256=hashlib.sha256(data).hexdigest(), label="real" if corpus else "synthetic",
                            license="MIT", about="fixture", format=fmt, task=task, corpus=corpus)


def _interaction(model: str, body: object, gzipped: bool = False, uri: str = "https://api.example/v1") -> dict:
    response = body if isinstance(body, str) else json.dumps(body)
    return {"request": {"uri": uri, "body": json.dumps({"model": model, "messages": []}) if model else None},
            "response": {"body": {"string": gzip.compress(response.encode()) if gzipped else response}}}


def _anthropic_stream(text: str) -> str:
    words = text.split(" ")
    events = [{"type": "message_start"}] + [
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": w + (" " if i < len(words) - 1
                                                                                     else "")}}
        for i, w in enumerate(words)]
    return "\n\n".join(f"event: x\ndata: {json.dumps(e)}" for e in events) + "\n\ndata: [DONE]\n"


def _cassette() -> bytes:
    interactions = [
        _interaction("gpt-4o-2024-08-06", {"choices": [{"message": {"content": ENGLISH}}]}, gzipped=True),
        _interaction("claude-sonnet-4-5", _anthropic_stream(ENGLISH.replace("committee", "board"))),
        _interaction(None, {"candidates": [{"content": {"parts": [{"text": "thinking...", "thought": True},
                                                                  {"text": ENGLISH.replace("plan", "scheme")}]}}]},
                     uri="https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generate"),
        _interaction("gpt-4o-mini", {"choices": [{"message": {"content": "Too short to judge."}}]}),
        _interaction("gpt-4.1-mini", {"choices": [{"message": {"content": json.dumps(
            {"id": 3, "summary": "Thought: I know it.\nFinal Answer: " + ENGLISH.replace("sound", "solid")})}}]}),
        {"request": {"uri": "https://api.anthropic.com/v1/messages", "parsed_body": {"model": "claude-sonnet-4-0"}},
         "response": {"parsed_body": {"type": "message", "content": [              # pydantic-ai: JSON kept parsed
             {"type": "text", "text": ENGLISH.replace("pilot", "trial")}]}}},
        _interaction("mistral-small", "\n\n".join(f"data: {json.dumps(e)}" for e in (   # a part list, then text
            {"choices": [{"delta": {"content": [{"type": "thinking", "thinking": "..."}]}}]},
            {"choices": [{"delta": {"content": ENGLISH.replace("regions", "areas")}}]}))),
    ]
    return yaml.dump({"interactions": interactions, "version": 1}).encode()


def _evalscope() -> bytes:
    consult = "请回答下列问题，首先给出回答，然后给出对应的法律依据: 例子\n请你回答："
    rows = [{"model": "/models/Qwen2.5-7B-1M", "choices": [{"message": {"content": "回答:" + CHINESE}}],
             "raw_input": {"system": consult, "query": "单位不签合同怎么办？", "response": "回答:" + CHINESE[::-1]}},
            {"model": "/models/Qwen2.5-7B-1M", "choices": [{"message": {"content": CHINESE[5:]}}],
             "raw_input": {"system": "回答以下问题，只需直接给出法条内容", "query": "第十条？", "response": CHINESE[9:]}}]
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows + rows[:1]).encode()   # evalscope repeats items


def test_replies_of_each_provider_schema_come_out_of_a_cassette(tmp_path):
    path = tmp_path / "test_agent.yaml"
    path.write_bytes(_cassette())
    replies = list(cassette_replies(path))
    assert [model for model, _ in replies] == ["gpt-4o-2024-08-06", "claude-sonnet-4-5", "gemini-2.5-flash",
                                               "gpt-4o-mini", "gpt-4.1-mini", "claude-sonnet-4-0", "mistral-small"]
    assert replies[0][1] == ENGLISH                                          # gzipped body
    assert replies[1][1] == ENGLISH.replace("committee", "board")            # a stream, joined
    assert replies[2][1] == ENGLISH.replace("plan", "scheme")                # Gemini's thinking part left out
    assert reply_prose(replies[4][1]) == ENGLISH.replace("sound", "solid")   # JSON wrapper and scaffolding off
    assert replies[5][1] == ENGLISH.replace("pilot", "trial")                # a body kept parsed
    assert replies[6][1] == ENGLISH.replace("regions", "areas")              # a streamed list of parts skipped


def test_evaluation_runs_give_each_output_with_its_model(tmp_path):
    runs = {
        "evalith.json": {"model": "deepseek-chat", "results": [{"case_id": "c1", "output": CHINESE},
                                                                {"case_id": "c2", "output": None}]},
        "sampled.json": {"model_family": "glm", "model_id": "openai/zai-org/GLM-4.5-Air",
                         "results": [{"case_id": "c1", "outputs": [CHINESE, CHINESE[::-1]]}]},
        "promptfoo.json": {"results": {"version": 3, "results": [
            {"provider": {"id": "deepseek:deepseek-chat"}, "response": {"output": ENGLISH}},
            {"provider": {"id": "deepseek:deepseek-chat"}, "response": {"error": "timeout"}}]}},
    }
    replies = []
    for name, run in runs.items():
        (tmp_path / name).write_text(json.dumps(run, ensure_ascii=False), encoding="utf-8")
        replies += list(evalith_replies(tmp_path / name))
    assert replies == [("deepseek-chat", CHINESE), ("openai/zai-org/GLM-4.5-Air", CHINESE),
                       ("openai/zai-org/GLM-4.5-Air", CHINESE[::-1]), ("deepseek:deepseek-chat", ENGLISH)]
    assert [chat_family(model) for model, _ in replies] == ["deepseek", "glm", "glm", "deepseek"]
    assert chat_family("openai/qwen-plus") == "qwen-plus"


def test_prose_language_needs_length_and_little_code():
    assert prose_language(ENGLISH) == "en" and prose_language(CHINESE) == "zh"
    assert prose_language("Too short to judge.") is None
    assert prose_language("def f(x): return {x: [y for y in x]} " * 20) is None
    assert chat_family("claude-3-5-haiku-20241022") == "claude"
    assert chat_family("gpt-4o-mini") == "gpt-4o" and chat_family("gpt-4-0125-preview") == "gpt-4"
    assert chat_family("/root/models/Qwen2.5-7B-1M") == "qwen2.5" and chat_family("mystery") == "mystery"


def test_packaged_text_docs_fetch_check_and_read_each_listed_file(tmp_path):
    cassette, recording, predictions = _cassette(), json.dumps({
        "request": {"body": {"model": "llama3.2:3b-instruct-fp16"}},
        "response": {"body": [{"__type__": "chunk", "__data__": {"choices": [{"delta": {"content": part}}]}}
                              for part in (ENGLISH[:40], ENGLISH[40:])]}}).encode(), _evalscope()
    # two releases of one package ship a cassette of the same name with other replies
    older = cassette.replace(b"board", b"panel")
    write_sdist(tmp_path / "agents-2.0.tar.gz", "agents-2.0", {"tests/cassettes/test_agent.yaml": cassette,
                                                               "tests/recordings/r1.json": recording})
    write_sdist(tmp_path / "agents-1.0.tar.gz", "agents-1.0", {"tests/cassettes/test_agent.yaml": older})
    with zipfile.ZipFile(tmp_path / "lawbench-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("lawbench/outputs/predictions.jsonl", predictions)
    listing = [_listed("agents-2.0.tar.gz", "tests/cassettes/test_agent.yaml", cassette, "vcr-cassette"),
               _listed("agents-2.0.tar.gz", "tests/recordings/r1.json", recording, "llama-stack-recording"),
               _listed("agents-1.0.tar.gz", "tests/cassettes/test_agent.yaml", older, "vcr-cassette"),
               _listed("lawbench-1.0-py3-none-any.whl", "lawbench/outputs/predictions.jsonl", predictions,
                       "evalscope-predictions", task="请回答下列问题")]
    docs = packaged_text_docs(tmp_path / "out", listing, lambda package, archive, cache: tmp_path / archive)

    machine = [(d.generator, d.lang, d.source) for d in docs if d.label == 1]
    assert machine.count(("claude-sonnet-4-5", "en", "pypi-agents")) == 2        # one per release: other texts
    assert machine.count(("gpt-4o-2024-08-06", "en", "pypi-agents")) == 1        # the same text in both: once
    assert ("llama3.2:3b-instruct-fp16", "en", "pypi-agents") in machine
    assert ("gpt-4o-mini", "en", "pypi-agents") not in machine                    # not prose
    # the legal consultation item once (repeated in the file), with its reference answer; the other task left out
    (reply,) = [d for d in docs if d.generator == "/models/Qwen2.5-7B-1M"]
    (reference,) = [d for d in docs if d.label == 0]
    assert reply.lang == reference.lang == "zh" and reply.group == reference.group
    assert reference.text == "回答:" + CHINESE[::-1]

    listing[0] = _listed("agents-2.0.tar.gz", "tests/cassettes/test_agent.yaml", older, "vcr-cassette")
    with pytest.raises(ValueError, match="SHA-256"):
        packaged_text_docs(tmp_path / "other", listing, lambda package, archive, cache: tmp_path / archive)


def test_packaged_chat_pairs_use_the_own_reference_else_one_held_out_human_each():
    chat = [TextDoc(ENGLISH, 1, "pypi-a", "gpt-4o", "en", "g1"),
            TextDoc(ENGLISH.upper(), 1, "pypi-a", "claude-sonnet-4-0", "en", "g2"),
            TextDoc(CHINESE, 1, "pypi-b", "Qwen2.5-7B", "zh", "g3"),
            TextDoc(CHINESE[:150], 0, "pypi-b", "human-reference", "zh", "g3")]
    humans = [TextDoc(f"human text number {i} " * 30, 0, "dev", "human-xsum", "en", f"h{i}") for i in range(2)]
    pairs = packaged_chat_pairs(chat, humans + [TextDoc("机器", 1, "dev", "x", "zh", "m")], seed=0)
    assert set(pairs) == {("gpt-4o", "en", "held-out test humans"), ("claude", "en", "held-out test humans"),
                          ("all", "en", "held-out test humans"), ("qwen2.5", "zh", "own reference answer")}
    english = pairs[("all", "en", "held-out test humans")]
    assert len({human for _, human, _ in english}) == 2                        # each held-out human drawn once
    (qwen,) = pairs[("qwen2.5", "zh", "own reference answer")]
    machine_text, human_text, length = qwen                # normalized (NFKC) and cut to the shorter one
    assert length == 150 and machine_text == human_text    # the reference is the reply's first 150 characters


def test_human_text_formats_and_a_pickle_that_imports_code_is_refused(tmp_path):
    (tmp_path / "posts.json").write_text(json.dumps({"train": {"pos": [CHINESE, "短"], "neg": [CHINESE[::-1]]},
                                                     "valid": {"text": [CHINESE[3:]], "label": [1]}}))
    (tmp_path / "news.pkl").write_bytes(pickle.dumps((["标题"], [CHINESE], [0])))
    (tmp_path / "tasks.jsonl").write_text(json.dumps({"query": f"事实:{CHINESE}\n问题:罪名是什么？", "response": "盗窃"},
                                                     ensure_ascii=False) + "\n")
    assert list(human_texts(tmp_path / "posts.json", "json-strings")) == [CHINESE, "短", CHINESE[::-1], CHINESE[3:]]
    assert list(human_texts(tmp_path / "news.pkl", "pickle-strings")) == ["标题", CHINESE]
    assert list(human_texts(tmp_path / "tasks.jsonl", "lawbench-jsonl")) == [CHINESE]
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(zipfile.ZipInfo("x")))
    with pytest.raises(ValueError, match="refused"):
        list(human_texts(tmp_path / "evil.pkl", "pickle-strings"))

    data = (tmp_path / "posts.json").read_bytes()
    with zipfile.ZipFile(tmp_path / "forum-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr("forum/data/posts.json", data)
    listing = [_listed("forum-1.0-py3-none-any.whl", "forum/data/posts.json", data, "json-strings",
                       corpus="forum-answers")]
    docs = packaged_text_docs(tmp_path / "out", listing, lambda package, archive, cache: tmp_path / archive)
    assert [(d.label, d.generator, d.lang) for d in docs] == [(0, "forum-answers", "zh")] * 3    # "短" is no prose
    assert all(d.group.startswith("forum-answers:") for d in docs)       # the corpus is the domain of its group


def test_packaged_human_rows_cut_each_corpus_to_each_length(monkeypatch):
    docs = [TextDoc(CHINESE * 2 + str(i), 0, "pypi-a", "forum-answers", "zh", f"forum-answers:{i}") for i in range(5)]
    docs.append(TextDoc(CHINESE[:150], 0, "pypi-a", "court-judgments", "zh", "court-judgments:x"))
    docs.append(TextDoc(CHINESE, 1, "pypi-b", "gpt-4o", "zh", "pypi-chat:y"))             # not a human corpus

    def fake_scores(texts, models_dir, batch_size, threads):
        return np.array([len(t) / 1000 for t in texts]), np.array([len(t) >= 200 for t in texts])

    monkeypatch.setattr("training.text_documents.document_scores", fake_scores)
    rows = packaged_human_rows(docs, None, (100, 200), per_corpus=4, seed=0, batch_size=16, threads=1)
    by_key = {(r["corpus"], r["length"]): r for r in rows}
    assert by_key[("forum-answers", 100)] == {"corpus": "forum-answers", "lang": "zh", "length": 100, "texts": 4,
                                              "not_judged": 0, "flagged": 0.0, "median_score": 0.1}
    assert by_key[("forum-answers", 200)]["flagged"] == 1.0 and by_key[("forum-answers", 200)]["texts"] == 4
    assert by_key[("court-judgments", 100)]["texts"] == 1 and by_key[("court-judgments", 200)]["texts"] == 0
    assert by_key[("court-judgments", 200)]["flagged"] is None
    # a baseline folder's share flagged on the same texts (here the same fake scores)
    compared = packaged_human_rows(docs, None, (100, 200), per_corpus=4, seed=0, batch_size=16, threads=1,
                                   baseline_dir=Path("shipped"))
    assert [r["baseline_flagged"] for r in compared] == [r["flagged"] for r in rows]


def test_listed_human_corpora_join_the_packaged_humans_and_get_forum_requests(monkeypatch):
    from training.text_data import chat_prompts, read_packaged_human

    listed = [TextDoc(CHINESE + str(i), 0, "pypi-forum", "zhihu-answers", "zh", f"zhihu-answers:{i}")
              for i in range(6)]
    listed.append(TextDoc(ENGLISH, 1, "pypi-agents", "gpt-4o", "en", "pypi-chat:x"))
    read_files = []

    def fake_docs(listing):
        read_files.extend(listing)
        return listed

    monkeypatch.setattr("training.text_packaged.packaged_text_docs", fake_docs)
    docs = [d for d in read_packaged_human(max_per_corpus=2, corpora=["zhihu-answers"]) if d.source == "pypi-forum"]
    assert read_files and {f.corpus for f in read_files} == {"zhihu-answers"}     # only that corpus's files read
    assert len(docs) == 2 and all(d.generator == "zhihu-answers" and d.label == 0 for d in docs)
    # the same texts whatever the seed: `generate` prompts (its own seed) from the texts the recipe trains on (seed 0)
    reseeded = read_packaged_human(max_per_corpus=2, seed=61, corpora=["zhihu-answers"])
    assert [d.group for d in docs] == [d.group for d in reseeded if d.source == "pypi-forum"]
    (prompt, human), = chat_prompts(docs[:1], 1, random.Random(0), lang="zh")
    assert human is docs[0] and ("知乎" in prompt or "网友" in prompt or "你怎么看" in prompt)
    with pytest.raises(ValueError, match="no human corpus"):
        read_packaged_human(corpora=["web-news"])


def test_a_trained_corpus_is_scored_on_its_held_out_texts_only(monkeypatch):
    from training.loop import stable_fraction

    docs = [TextDoc(CHINESE * 2 + str(i), 0, "pypi-a", "web-news", "zh", f"web-news:{i}") for i in range(40)]
    held_out = [d for d in docs if stable_fraction(d.group) < 0.3]
    assert 0 < len(held_out) < len(docs)
    monkeypatch.setattr("training.text_documents.document_scores",
                        lambda texts, *args: (np.zeros(len(texts)), np.zeros(len(texts), dtype=bool)))
    (row,) = packaged_human_rows(docs, None, (100,), per_corpus=100, seed=0, batch_size=16, threads=1,
                                 trained=["web-news"], test_share=0.3)
    assert row["trained_genre"] and row["texts"] == len(held_out)
    (row,) = packaged_human_rows(docs, None, (100,), per_corpus=100, seed=0, batch_size=16, threads=1)
    assert "trained_genre" not in row and row["texts"] == len(docs)
