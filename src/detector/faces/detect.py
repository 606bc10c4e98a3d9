"""Face detection with facenet-pytorch's MTCNN (weights ship inside the package; runs on CPU)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np
import torch


@dataclass(frozen=True)
class DetectedFace:
    box: np.ndarray          # x0, y0, x1, y1 in pixels of the frame it was found in (float32)
    confidence: float        # MTCNN's final-stage probability
    landmarks: np.ndarray    # 5 x 2: left eye, right eye, nose, left mouth corner, right mouth corner

    @property
    def size(self) -> float:
        """The larger side of the box, in pixels."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class FaceFinder:
    """Finds faces of at least `min_face_size` pixels with confidence >= `min_confidence`.

    Frames are downscaled so their longer side is at most `max_side` before detection (MTCNN's cost grows with the
    pixel count); boxes come back in the frame's own pixels. Frames of equal size are detected in one batch.
    """

    def __init__(self, min_face_size: int = 40, min_confidence: float = 0.95, max_side: int = 1024,
                 max_faces: int = 8):
        from facenet_pytorch import MTCNN

        self.min_face_size = min_face_size
        self.min_confidence = min_confidence
        self.max_side = max_side
        self.max_faces = max_faces
        # MTCNN looks for faces down to 12 px in the downscaled frame; the size filter below applies the real bound.
        self._mtcnn = MTCNN(keep_all=True, device="cpu", min_face_size=12, post_process=False,
                            select_largest=False)
        self._lock = threading.Lock()          # one detector, shared by the engine's prepare threads

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        return self.detect_many([rgb])[0]

    def detect_many(self, frames: list[np.ndarray]) -> list[list[DetectedFace]]:
        """Faces per frame, largest first, at most `max_faces` per frame."""
        results: list[list[DetectedFace]] = [[] for _ in frames]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, frame in enumerate(frames):
            groups.setdefault(frame.shape[:2], []).append(index)
        for (height, width), indices in groups.items():
            if min(height, width) < self.min_face_size:
                continue                     # no face of the minimum size fits (and MTCNN's pyramid would be empty)
            scale = min(1.0, self.max_side / max(height, width))
            small = [_resized(frames[i], scale) for i in indices]
            with self._lock, torch.inference_mode():
                # MTCNN's smallest window must still catch faces of min_face_size after downscaling
                self._mtcnn.min_face_size = max(12, int(self.min_face_size * scale * 0.9))
                boxes, probs, points = self._mtcnn.detect(np.stack(small), landmarks=True)
            for i, frame_boxes, frame_probs, frame_points in zip(indices, boxes, probs, points):
                results[i] = self._keep(frame_boxes, frame_probs, frame_points, scale)
        return results

    def _keep(self, boxes, probs, points, scale: float) -> list[DetectedFace]:
        if boxes is None:
            return []
        faces = []
        for box, prob, marks in zip(boxes, probs, points):
            face = DetectedFace(box=np.asarray(box, np.float32) / scale, confidence=float(prob),
                                landmarks=np.asarray(marks, np.float32).reshape(5, 2) / scale)
            if face.confidence >= self.min_confidence and face.size >= self.min_face_size:
                faces.append(face)
        faces.sort(key=lambda f: -f.size)
        return faces[: self.max_faces]


def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return rgb
    height, width = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                      interpolation=cv2.INTER_AREA)
