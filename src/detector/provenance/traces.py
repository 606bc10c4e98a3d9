"""Generator traces: metadata fields that name a known image/video/audio generator or carry its settings."""

from __future__ import annotations

import re

from .containers import Metadata

SCAN_CHARS = 16 * 1024   # generator settings sit at the start of a field; do not regex megabytes

# Field names that only generators write, with what they mean.
_GENERATOR_KEYS = {
    "parameters": "Stable Diffusion web UI (AUTOMATIC1111/Forge) parameters",
    "workflow": "ComfyUI workflow",
    "prompt": "ComfyUI prompt graph",
    "invokeai_metadata": "InvokeAI",
    "sd-metadata": "InvokeAI",
    "dream": "InvokeAI (dream)",
    "fooocus_scheme": "Fooocus",
    "generation_data": "Tensor.Art / SD generation data",
}
# Names in field values; word boundaries keep ordinary words ("flux", "imagine") out.
_GENERATOR_NAMES = [
    (re.compile(r"\bstable[ _-]?diffusion\b|\bSDXL\b|\bsd_xl_", re.I), "Stable Diffusion"),
    (re.compile(r"\bmidjourney\b", re.I), "Midjourney"),
    (re.compile(r"\bdall[ ·\-]?e\b", re.I), "DALL-E"),
    (re.compile(r"\bgpt-image-\d|\bgpt-4o image", re.I), "OpenAI GPT image"),
    (re.compile(r"\bcomfyui\b", re.I), "ComfyUI"),
    (re.compile(r"\bnovelai\b", re.I), "NovelAI"),
    (re.compile(r"\binvokeai\b", re.I), "InvokeAI"),
    (re.compile(r"\bfooocus\b", re.I), "Fooocus"),
    (re.compile(r"\badobe firefly\b", re.I), "Adobe Firefly"),
    (re.compile(r"\bFLUX\.1\b"), "FLUX.1"),
    (re.compile(r"\bideogram\b", re.I), "Ideogram"),
    (re.compile(r"\bleonardo\.ai\b", re.I), "Leonardo.Ai"),
    (re.compile(r"\brunway ?(ml|gen-?\d)\b", re.I), "Runway"),
    (re.compile(r"\bsora\b", re.I), "Sora"),
    (re.compile(r"\bkling\b|可灵"), "Kling"),
    (re.compile(r"\bjimeng\b|即梦"), "Jimeng"),
    (re.compile(r"\bdoubao\b|豆包"), "Doubao"),
    (re.compile(r"通义万相|\bwanxiang\b|\bWan2\.\d", re.I), "Tongyi Wanxiang"),
    (re.compile(r"文心一格|\bERNIE-ViLG\b", re.I), "ERNIE-ViLG"),
    (re.compile(r"\bhunyuan(video|dit)?\b|混元", re.I), "Hunyuan"),
    (re.compile(r"\bkolors\b|可图", re.I), "Kolors"),
    (re.compile(r"\bElevenLabs\b", re.I), "ElevenLabs"),
    (re.compile(r"\bsuno\b(?:\.ai|\.com| ai)", re.I), "Suno"),
]
_A1111_SETTINGS = re.compile(r"\bSteps: \d+, Sampler: ")


def find_traces(meta: Metadata, creator_tools: list[str]) -> list[dict]:
    traces: list[dict] = []
    seen: set[tuple[str, str]] = set()

    def add(generator: str, location: str, evidence: str) -> None:
        if (generator, location) not in seen:
            seen.add((generator, location))
            traces.append({"generator": generator, "location": location, "evidence": evidence[:160]})

    for item in meta.fields:
        if item.key.lower() == "aigc":
            continue  # the label itself is reported as a label
        value = item.value[:SCAN_CHARS]
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        key = item.key.lower()
        if key in _GENERATOR_KEYS and _looks_like_generator_payload(key, text):
            add(_GENERATOR_KEYS[key], item.location, text)
        if _A1111_SETTINGS.search(text):
            add("Stable Diffusion web UI (AUTOMATIC1111/Forge) parameters", item.location, text)
        for pattern, generator in _GENERATOR_NAMES:
            match = pattern.search(text)
            if match:
                start = max(0, match.start() - 40)
                add(generator, item.location, text[start:match.end() + 80])
    for tool in creator_tools:
        for pattern, generator in _GENERATOR_NAMES:
            if pattern.search(tool):
                add(generator, "XMP/CreatorTool", tool)
    return traces


def _looks_like_generator_payload(key: str, text: str) -> bool:
    """Generic key names ("prompt", "workflow", "parameters") count only with the generator's own structure."""
    if key == "parameters":
        return bool(_A1111_SETTINGS.search(text)) or "Negative prompt:" in text
    if key in ("prompt", "workflow"):
        return '"class_type"' in text or ('"nodes"' in text and '"links"' in text)
    return True


# Fields in which tools name themselves when they write a file (EXIF Software, FFmpeg's encoder tag, ID3 TSSE, ...).
_PROCESSING_KEYS = {"software", "encoder", "\xa9too", "tsse", "creatortool", "producer", "encoded_by", "tenc"}


def find_processing_software(meta: Metadata, creator_tools: list[str]) -> list[dict]:
    """Tools that wrote or re-encoded the file, as the file itself says."""
    found = [{"software": str(tool)[:120], "location": "XMP/CreatorTool"} for tool in creator_tools]
    for item in meta.fields:
        if item.key.lower() in _PROCESSING_KEYS:
            value = item.value[:120]
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            found.append({"software": text.strip("\x00 "), "location": item.location})
    return found
