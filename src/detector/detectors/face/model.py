"""FaceForgeryDetector: every face found by MTCNN is cropped (the shared align_crop), scored by the network and
calibrated; video faces are tracked across the sampled frames."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

from ...engine.bundle import ModelBundle
from ...engine.interface import Detector, Finding, NotApplicable, Prepared
from ...faces import CROP_MARGIN, CROP_SIZE, FaceFinder, align_crop, map_points, track_faces
from ...media.types import DecodedMedia, ImageMedia, VideoMedia
from .network import DEFAULT_INPUT_SIZE, HEADS, FaceForgeryNet, normalize

VIDEO_DETECTION_SIDE = 640       # video frames are searched at this size (speed); images at 1024
VIDEO_KEY_FRAME_EVERY = 4        # full face search on every 4th sampled frame; the frames between re-check its faces
RECHECK_WITHIN_SECONDS = 0.5     # ... when samples are this close: further apart, faces move or cut away between them
SMALL_FACE = 80                  # faces smaller than this (px) are scored, with a caveat


@dataclass
class FaceUnit:
    frame: int
    time: float | None
    box: list[float]
    size: float


class FaceForgeryDetector(Detector):
    name = "face-forgery"
    modalities = ("image", "video")
    channels_last = True

    def __init__(self, bundle: ModelBundle, device: torch.device):
        super().__init__(bundle, device)
        config = bundle.config
        self.crop_size = int(config.get("crop_size", CROP_SIZE))
        self.crop_margin = float(config.get("crop_margin", CROP_MARGIN))
        self.input_size = int(config.get("input_size", DEFAULT_INPUT_SIZE))
        confidence = float(config.get("min_confidence", 0.95))
        self.image_finder = FaceFinder(int(config.get("min_face_size", 40)), confidence, max_side=1024)
        # MTCNN's cost grows with (frame side / smallest face)^2; 32 frames per clip make that the video's main cost
        self.video_finder = FaceFinder(int(config.get("min_video_face_size", 64)), confidence,
                                       max_side=VIDEO_DETECTION_SIDE, key_frame_every=VIDEO_KEY_FRAME_EVERY,
                                       recheck_within_seconds=RECHECK_WITHIN_SECONDS)
        # The heads whose logits score video faces (all by default). Real talking-head videos set off the GAN head
        # far more often than photos do, so a bundle may leave it out of video verdicts (model card).
        self.video_heads = [HEADS.index(head) for head in config.get("video_heads", HEADS)]
        self.net = FaceForgeryNet(imagenet=False, texture_blocks=config.get("texture_probe_blocks"))
        self.net.load_state_dict(bundle.state_dict())
        self.net.eval()

    def modules(self) -> list[nn.Module]:
        return [self.net]

    def preprocess(self, media: DecodedMedia) -> Prepared | NotApplicable:
        if isinstance(media, ImageMedia):
            frames, times, finder = [media.rgb], [None], self.image_finder
        elif isinstance(media, VideoMedia):
            frames, times, finder = list(media.frames), list(media.timestamps), self.video_finder
            if not frames:
                return NotApplicable("the video has no decodable frames")
        else:
            return NotApplicable(f"face-forgery scores images and video, not {media.modality}")
        faces_per_frame = finder.detect_many(frames, times)
        units, faces, crops, crop_boxes = [], [], [], []
        for frame_index, (rgb, time, frame_faces) in enumerate(zip(frames, times, faces_per_frame)):
            for face in frame_faces:
                crop, matrix = align_crop(rgb, face, self.crop_size, self.crop_margin)
                units.append(normalize(torch.from_numpy(crop), self.input_size))
                crops.append(crop)
                crop_boxes.append(map_points(matrix, face.box.reshape(2, 2)).reshape(-1).tolist())
                faces.append(FaceUnit(frame_index, time, [round(float(v), 1) for v in face.box], face.size))
        if not units:
            return NotApplicable("no face found",
                                 evidence={"frames_searched": len(frames), "min_face_size": finder.min_face_size})
        tracks = track_faces([[np.asarray(f.box) for f in faces if f.frame == i] for i in range(len(frames))]) \
            if isinstance(media, VideoMedia) else []
        return Prepared(units=units, context={"faces": faces, "crops": crops, "crop_boxes": crop_boxes,
                                              "tracks": tracks, "video": isinstance(media, VideoMedia),
                                              "frames": len(frames)})

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.net(batch)

    def summarize(self, prepared: Prepared, outputs: list[torch.Tensor], explain: bool) -> Finding | NotApplicable:
        raw = torch.stack(outputs).float().numpy()               # [faces, 3]: synthetic, face_swap, gan logits
        video = prepared.context["video"]
        head_logits = raw[:, 1:]
        # the head that scores each face: the larger of those scoring this medium (an image's: every head, whose
        # larger logit is column 0, the synthetic logit)
        scoring = np.array(self.video_heads if video else range(len(HEADS)))
        deciding = scoring[np.argmax(head_logits[:, scoring], axis=1)]
        probabilities = np.atleast_1d(self.calibration.probability(head_logits[np.arange(len(raw)), deciding]))
        faces: list[FaceUnit] = prepared.context["faces"]
        threshold = self.calibration.synthetic_threshold
        # head scores are sigmoids of the aligned head logits (0.5 = the point where that head flags 5% of real val
        # faces; see the model card)
        head_scores = 1.0 / (1.0 + np.exp(-head_logits))
        evidence_faces = []
        for index, (face, probability) in enumerate(zip(faces, probabilities)):
            kind = HEADS[deciding[index]] if probability >= threshold else None     # which head fired, if flagged
            evidence_faces.append({"box": face.box, "score": round(float(probability), 4), "frame": face.frame,
                                   "time": _seconds(face.time),
                                   "kind": kind,
                                   "heads": {name: round(float(s), 4) for name, s in zip(HEADS, head_scores[index])}})
        if video:
            score, track_evidence, ranges = self._video_score(prepared, probabilities, head_scores, threshold)
            evidence = {"faces": evidence_faces, "tracks": track_evidence, "suspicious_ranges": ranges,
                        "frames_sampled": prepared.context["frames"]}
            explained = [t["best_face"] for t in track_evidence]
        else:
            score = float(probabilities.max())
            evidence = {"faces": evidence_faces}
            explained = list(range(len(faces)))
        for track in evidence.get("tracks", []):
            track.pop("best_face")
        if explain:
            for index in explained:
                evidence_faces[index]["heatmap_png"] = self.heatmap(prepared.context["crops"][index],
                                                                    prepared.units[index], int(deciding[index]))
        small = [f for f in faces if f.size < SMALL_FACE]
        reason = (f"{len(small)} of {len(faces)} faces are smaller than {SMALL_FACE} px; small faces are scored "
                  "less reliably") if small else None
        return Finding(score=round(score, 4), evidence=evidence, reason=reason)

    def _video_score(self, prepared: Prepared, probabilities: np.ndarray, head_scores: np.ndarray, threshold: float
                     ) -> tuple[float, list[dict], list[list[float]]]:
        """Max over tracks of the mean face score; short tracks (stray detections) only count when nothing else does.
        Each track also carries every head's mean score, the ones that do not score video included."""
        faces: list[FaceUnit] = prepared.context["faces"]
        index_of: dict[tuple[int, int], int] = {}          # (frame, face within frame) -> unit index
        per_frame: dict[int, int] = {}
        for n, face in enumerate(faces):
            index_of[(face.frame, per_frame.get(face.frame, 0))] = n
            per_frame[face.frame] = per_frame.get(face.frame, 0) + 1
        frames = prepared.context["frames"]
        track_rows = []
        for track in prepared.context["tracks"]:
            members = [index_of[d] for d in track.detections]
            scores = probabilities[members]
            track_rows.append({
                "track": track.track_id, "faces": len(members), "score": round(float(scores.mean()), 4),
                "max_face_score": round(float(scores.max()), 4),
                "heads": {name: round(float(v), 4) for name, v in zip(HEADS, head_scores[members].mean(axis=0))},
                "start": _seconds(faces[members[0]].time), "end": _seconds(faces[members[-1]].time),
                "suspicious_ranges": _ranges([faces[m] for m in members], scores >= threshold),
                "best_face": members[int(np.argmax(scores))],
            })
        min_length = min(3, frames)
        counted = [t for t in track_rows if t["faces"] >= min_length] or track_rows
        score = max(t["score"] for t in counted)
        ranges = _merge([r for t in counted for r in t["suspicious_ranges"]])
        return score, track_rows, ranges

    def heatmap(self, crop: np.ndarray, unit: torch.Tensor, head: int) -> str:
        """Grad-CAM of the logit of the head that scored the face (index into HEADS) on the feature map that
        decided it (the network's last one, or the texture probe's), overlaid on the crop; base64 PNG."""
        device = next(self.net.parameters()).device
        with torch.inference_mode(False), torch.enable_grad():
            # the texture probe's trunk is frozen: the input carries the gradient to its feature map
            x = unit.detach().clone().unsqueeze(0).to(device).requires_grad_()
            features, logit = self.net.explained_logit(x, head)
            features.retain_grad()
            logit.backward()
            weights = features.grad.mean(dim=(2, 3), keepdim=True)
            cam = torch.relu((weights * features).sum(dim=1))[0].detach().float().cpu().numpy()
        self.net.zero_grad(set_to_none=True)
        cam = cam / cam.max() if cam.max() > 0 else cam
        cam = cv2.resize(cam, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_CUBIC)
        colored = cv2.applyColorMap(np.uint8(255 * np.clip(cam, 0, 1)), cv2.COLORMAP_JET)[..., ::-1]
        overlay = (0.55 * crop.astype(np.float32) + 0.45 * colored.astype(np.float32)).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(overlay).save(buffer, format="PNG", optimize=True)
        return base64.b64encode(buffer.getvalue()).decode("ascii")


def _ranges(faces: list[FaceUnit], flagged: np.ndarray) -> list[list[float]]:
    """[start, end] times of consecutive flagged faces in one track."""
    ranges: list[list[float]] = []
    previous = False
    for face, hit in zip(faces, flagged):
        if hit and face.time is not None:
            if previous:
                ranges[-1][1] = round(float(face.time), 3)
            else:
                ranges.append([round(float(face.time), 3)] * 2)
        previous = bool(hit)
    return ranges


def _merge(ranges: list[list[float]]) -> list[list[float]]:
    merged: list[list[float]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _seconds(time: float | None) -> float | None:
    return None if time is None else round(float(time), 3)
