"""Other evidence and the decision: SDXL watermark, C2PA (signed here with a generated certificate chain), IPTC source
types, generator traces, the Art. 6 category and Art. 18 tamper flags."""

from __future__ import annotations

import datetime
import io
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from detector.provenance import decide, inspect, write_label
from detector.provenance.watermark import SDXL_BITS, binomial_tail

AI_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
LABEL = {"Label": "1", "ContentProducer": "001191440300708461136TA01", "ProduceID": "g1", "ReservedCode1": "",
         "ContentPropagator": "", "PropagateID": "", "ReservedCode2": ""}


def natural_image(size: int = 512) -> np.ndarray:
    """Smooth gradients plus fine smooth texture: DWT-DCT marks need mid-frequency content, as photos have."""
    y, x = np.mgrid[0:size, 0:size] / size
    rng = np.random.default_rng(3)
    coarse = ((rng.normal(0, 1, (size // 4, size // 4, 3)) * 40) + 128).clip(0, 255).astype(np.uint8)
    texture = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC)).astype(float) - 128
    base = np.stack([128 + 50 * np.sin(6 * x + 2 * y), 80 + 90 * y, 90 + 70 * x * y], axis=2)
    return np.clip(base + 0.6 * texture, 0, 255).astype(np.uint8)


def sdxl_watermarked(rgb: np.ndarray) -> np.ndarray:
    """What diffusers' StableDiffusionXLWatermarker does: BGR in, dwtDct with the 48 public bits."""
    from imwatermark import WatermarkEncoder

    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", SDXL_BITS)
    return encoder.encode(np.ascontiguousarray(rgb[:, :, ::-1]), "dwtDct")[:, :, ::-1]


def png_bytes(rgb: np.ndarray, text: dict | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def marked_png() -> bytes:
    return png_bytes(sdxl_watermarked(natural_image()))


# ---------------------------------------------------------------- watermark
def test_sdxl_watermark_is_decoded(marked_png):
    watermark = inspect(marked_png, "png")["watermark"]
    assert watermark["detected"] and watermark["sdxl_match"]
    assert watermark["bits"] == "".join(map(str, SDXL_BITS))
    assert watermark["confidence"] == 1.0 and watermark["p_random"] < 1e-12


def test_unmarked_image_has_no_watermark():
    watermark = inspect(png_bytes(natural_image()), "png")["watermark"]
    assert watermark["checked"] and not watermark["detected"] and not watermark["sdxl_match"]
    assert watermark["p_random"] > 1e-6


def test_small_images_are_not_checked():
    watermark = inspect(png_bytes(natural_image(128)), "png")["watermark"]
    assert watermark["checked"] is False and "256" in watermark["reason"]


def test_binomial_tail():
    assert binomial_tail(0, 48) == 1.0
    assert binomial_tail(48, 48) == 2.0 ** -48


def test_stripping_metadata_from_a_labelled_watermarked_file_is_flagged(marked_png, tmp_path):
    src = tmp_path / "marked.png"
    src.write_bytes(marked_png)
    labelled = tmp_path / "labelled.png"
    write_label(src, labelled, propagator="PLAT01", propagate_id="1", label="1", producer=LABEL["ContentProducer"],
                produce_id="g1")
    intact = decide(inspect(labelled.read_bytes(), "png"), None, None)
    assert intact["category"] == "is" and intact["tamper"] == []

    stripped = png_bytes(np.asarray(Image.open(labelled).convert("RGB")))   # re-saved: all metadata gone
    result = decide(inspect(stripped, "png"), None, None)
    codes = {flag["code"] for flag in result["tamper"]}
    assert {"label_missing_with_watermark", "metadata_stripped"} <= codes
    assert result["category"] == "suspected" and result["display"] == "suspected AI-generated"


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
def test_exiftool_strip_is_flagged(marked_png, tmp_path):
    src = tmp_path / "marked.png"
    src.write_bytes(marked_png)
    labelled = tmp_path / "labelled.png"
    write_label(src, labelled, propagator="PLAT01", propagate_id="1", label="1")
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-all=", str(labelled)], check=True)
    result = decide(inspect(labelled.read_bytes(), "png"), None, None)
    assert result["implicit_label"] is None
    assert "label_missing_with_watermark" in {flag["code"] for flag in result["tamper"]}


# ---------------------------------------------------------------- C2PA
def certificate_chain():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common: str):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Provenance Test")])

    def usage(signer: bool):
        return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not signer,
                             crl_sign=not signer, encipher_only=False, decipher_only=False)

    def build(subject, issuer, public_key, signing_key, signer: bool):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
                   .add_extension(x509.BasicConstraints(ca=not signer, path_length=None), critical=True)
                   .add_extension(usage(signer), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
        if signer:
            builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
                       .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                                      False))
        return builder.sign(signing_key, hashes.SHA256())

    pem = lambda cert: cert.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build(name("Test Root CA"), name("Test Root CA"), ca_key.public_key(), ca_key, signer=False)
    leaf = build(name("Test Signer"), ca.subject, key.public_key(), ca_key, signer=True)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem(leaf) + pem(ca), key_pem, pem(ca).decode()


@pytest.fixture(scope="module")
def signed_jpeg():
    import c2pa

    chain, key_pem, ca_pem = certificate_chain()
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=key_pem,
                                                       ta_url=None))
    manifest = {"claim_generator_info": [{"name": "provenance-test", "version": "1.0"}], "title": "generated.jpg",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": AI_SOURCE}]}}]}
    buffer = io.BytesIO()
    Image.fromarray(natural_image(300)).save(buffer, "JPEG", quality=90)
    signed = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, "image/jpeg", io.BytesIO(buffer.getvalue()), signed)
    _, _, other_ca = certificate_chain()
    return signed.getvalue(), ca_pem, other_ca


def test_c2pa_trusted_with_configured_anchor(signed_jpeg):
    data, ca_pem, _ = signed_jpeg
    c2pa = inspect(data, "jpeg", trust_anchors_pem=ca_pem)["c2pa"]
    assert (c2pa["binding"], c2pa["signature"], c2pa["trust"]) == ("ok", "ok", "trusted")
    assert c2pa["ai_actions"][0]["digitalSourceType"] == "trainedAlgorithmicMedia"
    assert c2pa["signer"]["common_name"] == "Test Signer"


def test_c2pa_trust_reported_separately(signed_jpeg):
    data, _, other_ca = signed_jpeg
    no_anchors = inspect(data, "jpeg", trust_anchors_pem="")["c2pa"]
    assert (no_anchors["binding"], no_anchors["signature"], no_anchors["trust"]) == ("ok", "ok", "not_checked")
    wrong_anchor = inspect(data, "jpeg", trust_anchors_pem=other_ca)["c2pa"]
    assert (wrong_anchor["signature"], wrong_anchor["trust"]) == ("ok", "untrusted")


def test_c2pa_ai_claim_without_label_and_edited_content_are_flagged(signed_jpeg):
    data, ca_pem, _ = signed_jpeg
    result = decide(inspect(data, "jpeg", trust_anchors_pem=ca_pem), None, None)
    assert result["category"] == "suspected"
    assert "label_missing_with_c2pa_ai" in {flag["code"] for flag in result["tamper"]}

    edited = bytearray(data)
    edited[-300] ^= 0xFF   # inside the entropy-coded picture, after the manifest
    findings = inspect(bytes(edited), "jpeg", trust_anchors_pem=ca_pem)
    assert findings["c2pa"]["binding"] == "failed" and findings["c2pa"]["signature"] == "ok"
    assert "content_changed_after_signing" in {flag["code"] for flag in decide(findings, None, None)["tamper"]}


# ---------------------------------------------------------------- IPTC and generator traces
@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
def test_iptc_digital_source_type_in_xmp(tmp_path):
    path = tmp_path / "a.jpg"
    Image.fromarray(natural_image(64)).save(path)
    subprocess.run(["exiftool", "-q", "-overwrite_original", f"-XMP-iptcExt:DigitalSourceType={AI_SOURCE}",
                    str(path)], check=True)
    result = decide(inspect(path.read_bytes(), "jpeg"), None, None)
    assert result["iptc_source_types"][0]["ai"]
    assert result["category"] == "suspected"
    assert "label_missing_with_iptc_ai" in {flag["code"] for flag in result["tamper"]}


A1111 = ("a castle on a hill\nNegative prompt: blurry\nSteps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, "
         "Seed: 1234, Size: 512x512, Model: sd_xl_base_1.0")
COMFY = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1}}})


@pytest.mark.parametrize("text, generator", [
    ({"parameters": A1111}, "Stable Diffusion web UI (AUTOMATIC1111/Forge) parameters"),
    ({"prompt": COMFY}, "ComfyUI prompt graph"),
    ({"Software": "NovelAI"}, "NovelAI"),
    ({"Description": "Made with Midjourney v6"}, "Midjourney"),
])
def test_generator_traces(text, generator):
    findings = inspect(png_bytes(natural_image(64), text), "png")
    assert generator in {trace["generator"] for trace in findings["generator_traces"]}
    assert decide(findings, None, None)["category"] == "suspected"


@pytest.mark.parametrize("text", [{"prompt": "Please sign here"}, {"Software": "GIMP 2.10"},
                                  {"Comment": "fluxes of the river, imagine that"}])
def test_ordinary_metadata_is_not_a_trace(text):
    assert inspect(png_bytes(natural_image(64), text), "png")["generator_traces"] == []


# ---------------------------------------------------------------- decision
def labelled_png(fields: dict) -> bytes:
    return png_bytes(natural_image(64), {"AIGC": json.dumps({"AIGC": fields})})


@pytest.mark.parametrize("value, category, display", [
    ("1", "is", "AI-generated"), ("2", "possibly", "possibly AI-generated"), ("3", "suspected", "suspected AI-generated"),
])
def test_valid_label_decides_by_its_value(value, category, display):
    result = decide(inspect(labelled_png({**LABEL, "Label": value}), "png"), 0.1, "authentic")
    assert (result["category"], result["display"]) == (category, display)
    assert result["tamper"] == []
    json.dumps(result)


def test_declaration_and_detector_verdict():
    plain = inspect(png_bytes(natural_image(64)), "png")
    assert decide(plain, None, None)["category"] == "none" and decide(plain, None, None)["display"] is None
    declared = decide(plain, 0.2, "authentic", declared_ai=True)
    assert declared["category"] == "possibly" and "declared" in declared["reasons"][0]
    detected = decide(plain, 0.93, "synthetic")
    assert detected["category"] == "suspected" and "0.93" in detected["reasons"][0]
    assert detected["tamper"] == [], "a detector verdict alone is not evidence of label removal"


def test_invalid_label_is_suspected_and_flagged():
    result = decide(inspect(labelled_png({**LABEL, "Label": "7"}), "png"), None, None)
    assert result["category"] == "suspected"
    assert "label_invalid" in {flag["code"] for flag in result["tamper"]}


def test_explicit_text_notice_without_implicit_label_is_flagged():
    result = decide(inspect("【AI生成】这是一段文字。".encode(), "text"), None, None)
    assert result["category"] == "suspected"
    assert "label_missing_with_explicit_notice" in {flag["code"] for flag in result["tamper"]}


def test_single_pass_decoding_equals_the_library_decoder(marked_png):
    from imwatermark import WatermarkDecoder

    from detector.provenance.watermark import bits_for_length, block_bits

    odd_size = natural_image(520)[:517, :301]
    for rgb in (np.asarray(Image.open(io.BytesIO(marked_png)).convert("RGB")), odd_size):
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        per_block, numbers = block_bits(bgr)
        for length in (48, 32):
            expected = [int(bit) for bit in WatermarkDecoder("bits", length).decode(bgr, "dwtDct")]
            assert bits_for_length(per_block, numbers, length) == expected


def test_large_images_are_decoded_from_a_bounded_region():
    large = np.asarray(Image.fromarray(natural_image(512)).resize((1300, 1100), Image.BICUBIC))
    watermark = inspect(png_bytes(sdxl_watermarked(large)), "png")["watermark"]
    assert watermark["sdxl_match"] and watermark["confidence"] >= 0.95


def test_rewritten_by_a_tool_without_label_is_flagged(marked_png):
    rgb = np.asarray(Image.open(io.BytesIO(marked_png)).convert("RGB"))
    findings = inspect(png_bytes(rgb, {"Software": "GIMP 2.10.34"}), "png")
    assert findings["processing_software"] == [{"software": "GIMP 2.10.34", "location": "png/tEXt:Software"}]
    flags = {flag["code"]: flag for flag in decide(findings, None, None)["tamper"]}
    assert "GIMP 2.10.34" in flags["rewritten_without_label"]["message"]
    assert "metadata_stripped" not in flags, "a tEXt chunk is metadata: nothing was stripped"
