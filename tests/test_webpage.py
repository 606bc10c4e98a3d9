"""The moderator page in a real browser: Playwright driving Debian's Chromium against the running service.

Uploads and pasted text go to the real API. Evidence drawing (face boxes with heatmaps, waveform segments, text
spans) is checked with results in the detectors' evidence format served by the test, because the shipped detectors
may have no weights yet (their real results are then `not_applicable`, with no evidence to draw).
"""

from __future__ import annotations

import base64
import io
import json
import shutil

import httpx
import numpy as np
import pytest
from PIL import Image
from test_service_support import (
    comparable,
    same_result,
    mp4_bytes,
    png_bytes,
    running_service,
    stop_service,
    wav_bytes,
)

from detector.config import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason=f"{CHROMIUM} is not installed (apt-get install -y chromium)")


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    yield running_service(tmp_path_factory.mktemp("service"))
    stop_service()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, service):
    context = browser.new_context(viewport={"width": 1100, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{service.url}/ui/")
    yield page
    context.close()


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def _enter_key(page, key: str) -> None:
    page.fill("#api-key", key)
    page.dispatch_event("#api-key", "change")


def test_upload_files_shows_each_verdict(page, service):
    png, wav = png_bytes(seed=7), wav_bytes(1.0)
    with service.client("acme") as api:
        expected = {name: api.post("/v1/scan", files={"file": (name, data)}).json()
                    for name, data in [("photo.png", png), ("voice.wav", wav)]}
    _enter_key(page, service.keys["acme"]["key"])
    page.set_input_files("#file-input", files=[
        {"name": "photo.png", "mimeType": "image/png", "buffer": png},
        {"name": "voice.wav", "mimeType": "audio/wav", "buffer": wav}])
    page.wait_for_function("document.querySelectorAll('.result .verdict').length === 2")
    for name, result in expected.items():
        card = page.locator(".result", has=page.locator("h3", has_text=name))
        assert card.locator(".verdict").inner_text() == result["verdict"].replace("_", " ")
        if result["reason"]:
            assert card.locator(".reasons").inner_text() == result["reason"]
        assert same_result(comparable(json.loads(card.locator("details pre").text_content())), comparable(result))
    photo = page.locator(".result", has=page.locator("h3", has_text="photo.png"))
    assert photo.locator("canvas").count() == 1                          # the image itself, for the face boxes
    assert page.locator(".result", has=page.locator("h3", has_text="voice.wav")).locator(
        "canvas.waveform").count() == 1
    _screenshot(page, "webpage-upload.png")


def _focus_by_tab(page, element_id: str, key: str = "Tab", limit: int = 20) -> None:
    for _ in range(limit):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press(key)
    raise AssertionError(f"#{element_id} cannot be reached with {key}")


def test_keyboard_only(page, service):
    # Listen for the file chooser from the start: Playwright intercepts choosers only once a listener exists, and
    # setting that up races with a chooser opened right after.
    page.on("filechooser", lambda chooser: chooser.set_files(
        [{"name": "keyboard.png", "mimeType": "image/png", "buffer": png_bytes(seed=3)}]))
    page.wait_for_timeout(200)
    _focus_by_tab(page, "api-key")
    page.keyboard.type(service.keys["acme"]["key"])
    _focus_by_tab(page, "text-input")
    page.keyboard.type("The committee will meet on Thursday to review the budget.")
    _focus_by_tab(page, "scan-text")
    page.keyboard.press("Enter")
    page.wait_for_selector(".result .verdict")
    assert "Pasted text" in page.locator(".result h3").first.inner_text()
    _focus_by_tab(page, "drop-zone", key="Shift+Tab")              # back up from the button, inside the page
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelectorAll('.result .verdict').length === 2")
    assert page.locator(".result h3").first.inner_text() == "keyboard.png"


def test_errors_are_shown_clearly(page, service):
    _enter_key(page, "dk_wrong_key")
    page.fill("#text-input", "some text")
    page.click("#scan-text")
    alert = page.locator("#error[role=alert]")
    alert.wait_for(state="visible")
    assert "API key is missing or not valid" in alert.inner_text()
    _enter_key(page, service.keys["acme"]["key"])
    page.set_input_files("#file-input", files=[{"name": "tool.bin", "mimeType": "application/octet-stream",
                                                "buffer": b"\x7fELF\x02\x01\x01" + b"\x00" * 64}])
    page.wait_for_function("document.getElementById('error').textContent.includes('not supported')")
    assert "executable" in alert.inner_text()
    _screenshot(page, "webpage-error.png")


def test_long_media_job_shows_progress_then_result(page, service):
    """The tiny test video finishes at once; the page is shown it queued, then running once, as a long one is."""
    polls = []

    def as_queued(route):
        response = route.fetch()
        route.fulfill(response=response, json=response.json() | {"state": "queued", "result": None})

    def hold_first_poll(route):
        polls.append(route.request.url)
        response = route.fetch()
        job = response.json()
        if len(polls) == 1:
            job.update(state="running", result=None)
        route.fulfill(response=response, json=job)

    page.route("**/v1/scan?*", as_queued)
    page.route("**/v1/jobs/*", hold_first_poll)
    _enter_key(page, service.keys["acme"]["key"])
    with page.expect_response(lambda r: r.url.endswith("/v1/scan?explain=true")) as submitted:
        page.set_input_files("#file-input", files=[{"name": "clip.mp4", "mimeType": "video/mp4",
                                                    "buffer": mp4_bytes()}])
    assert submitted.value.status == 202
    page.wait_for_function("document.querySelector('.result .status') && "
                           "document.querySelector('.result .status').textContent.includes('Job running')")
    assert page.locator(".result progress").is_visible()
    page.wait_for_selector(".result .verdict")
    assert not page.locator(".result progress").count()
    job_id = submitted.value.json()["job_id"]
    with service.client("acme") as api:
        expected = api.get(f"/v1/jobs/{job_id}/result").json()
    shown = json.loads(page.locator(".result details pre").text_content())
    assert shown == expected


def _heatmap_png() -> str:
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[..., 2] = 255                                    # solid blue: easy to find once blended
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _result(modality: str, evidence: dict, score: float) -> dict:
    return {"path": "x", "modality": modality, "verdict": "synthetic", "score": score, "reason": None,
            "evidence": evidence, "provenance": {"category": "implicit", "labels_found": 1,
                                                 "display": "AI-generated content label found"},
            "model": {"name": "test-model", "version": "1"}, "elapsed_ms": 1.0, "sha256": "00" * 32,
            "error_code": None, "matches": []}


def test_evidence_is_drawn(page, service):
    answers = {
        "face.png": _result("image", {"faces": [{"box": [40.0, 30.0, 120.0, 110.0], "score": 0.93,
                                                 "kind": "face_swap", "heatmap_png": _heatmap_png()}]}, 0.93),
        "speech.wav": _result("audio", {"duration_seconds": 2.0, "window_seconds": 1.0,
                                        "suspicious_segments": [{"start": 0.5, "end": 1.5, "score": 0.9}],
                                        "windows": [{"start": 0.0, "score": 0.2}, {"start": 0.5, "score": 0.9}]},
                              0.9),
    }
    answers["clip.mp4"] = _result("video", {"faces": [], "suspicious_ranges": [], "tracks": [
        {"track": 0, "faces": 8, "score": 0.31, "start": 0.5, "end": 3.0, "heads": {"face_swap": 0.2, "gan": 0.95}}],
        "soundtrack": {"verdict": "synthetic", "score": 0.87, "reason": None,
                       "model": {"name": "synthetic-voice", "version": "1", "caveat": "weak on unseen TTS"},
                       "evidence": {"duration_seconds": 3.0,
                                    "suspicious_segments": [{"start": 1.0, "end": 3.0, "score": 0.87}]}}},
        0.31)
    text = "First sentence is human. Second sentence sounds generated."
    answers["<text>"] = _result("text", {"spans": [{"start": 0, "end": 24, "score": 0.1},
                                                   {"start": 25, "end": len(text) - 10, "score": 0.95}],
                                         "unread_characters": 10}, 0.8)

    # an uploaded document: the page never sees its decoded text, so it shows the passages the evidence carries
    answers["doc.txt"] = _result("text", {"spans": [
        {"start": 0, "end": 22, "score": 0.2, "text": "A first human passage."},
        {"start": 23, "end": 45, "score": 0.3, "text": "A second human clause."},
        {"start": 300, "end": 326, "score": 0.9, "text": "A later generated passage."}]}, 0.7)

    def answer(route):
        body = route.request.post_data_buffer or b""
        name = next((n for n in answers if n.encode() in body), "<text>")
        route.fulfill(status=200, content_type="application/json", body=json.dumps(answers[name]))

    page.route("**/v1/scan*", answer)
    _enter_key(page, "dk_any_key")
    page.set_input_files("#file-input", files=[
        {"name": "face.png", "mimeType": "image/png", "buffer": png_bytes(size=160, seed=1)},
        {"name": "speech.wav", "mimeType": "audio/wav", "buffer": wav_bytes(2.0)},
        {"name": "clip.mp4", "mimeType": "video/mp4", "buffer": mp4_bytes()},
        {"name": "doc.txt", "mimeType": "text/plain", "buffer": b"doc.txt: the text of an uploaded document"}])
    page.fill("#text-input", text)
    page.click("#scan-text")
    page.wait_for_function("document.querySelectorAll('.result .summary .verdict').length === 5")

    face_card = page.locator(".result", has=page.locator("h3", has_text="face.png"))
    assert "1 face box" in face_card.locator("canvas").get_attribute("aria-label")
    page.wait_for_timeout(300)                              # the heatmap image loads asynchronously
    edge, inside = face_card.locator("canvas").evaluate("""canvas => {
        const ctx = canvas.getContext('2d');
        return [Array.from(ctx.getImageData(40, 70, 1, 1).data), Array.from(ctx.getImageData(80, 70, 1, 1).data)];
    }""")
    assert edge[0] > 180 and edge[1] < 120                  # the red box outline of a high-scoring face
    assert inside[2] > 150                                  # the blue heatmap blended inside the box

    audio_card = page.locator(".result", has=page.locator("h3", has_text="speech.wav"))
    assert "0.5–1.5 s" in audio_card.locator("canvas.waveform").get_attribute("aria-label")

    video_card = page.locator(".result", has=page.locator("h3", has_text="clip.mp4"))
    assert video_card.locator("ul.tracks li").inner_text() == \
        "Face 1, 0.5–3 s (8 frames): 31%; heads: face swap 20%, gan 95%"
    assert video_card.locator("p.soundtrack").inner_text() == \
        "Soundtrack: synthetic, 87.0% likely synthetic (synthetic-voice 1)"
    assert "Voice model caveat: weak on unseen TTS" in video_card.inner_text()
    assert video_card.locator("canvas[aria-label^='Suspicious soundtrack']").get_attribute("aria-label") == \
        "Suspicious soundtrack segments: 1–3 s"

    text_card = page.locator(".result", has=page.locator("h3", has_text="Pasted text"))
    assert text_card.locator("mark.suspicious").inner_text() == "Second sentence sounds "   # its last 10 unread
    assert text_card.locator(".text-view").inner_text() == text
    assert "10 characters between passages were not read" in text_card.inner_text()
    assert "AI-generated content label found" in text_card.locator("dl.findings").inner_text()

    document_card = page.locator(".result", has=page.locator("h3", has_text="doc.txt"))
    assert document_card.locator(".text-view").inner_text() == \
        "A first human passage. A second human clause. … A later generated passage."
    assert document_card.locator("mark.suspicious").inner_text() == "A later generated passage."
    assert "The scored passages of the document" in document_card.inner_text()
    _screenshot(page, "webpage-evidence.png")


def test_page_is_served_without_a_key(service):
    page = httpx.get(f"{service.url}/ui/")
    assert page.status_code == 200 and "Synthetic media check" in page.text
    assert httpx.get(f"{service.url}/ui/app.js").status_code == 200
    root = httpx.get(f"{service.url}/")
    assert root.status_code == 307 and root.headers["Location"] == "/ui/"
