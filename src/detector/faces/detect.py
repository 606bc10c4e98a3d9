"""Face detection with facenet-pytorch's MTCNN networks (weights ship inside the package; runs on CPU).

The three-stage cascade is driven here rather than through `MTCNN.detect`, for speed:
- images are resized with OpenCV's area interpolation and the networks run on channels-last tensors, in chunks
  (facenet resizes each candidate box with a separate torch call, thousands per video, and runs NCHW: 2x slower);
- video frames between key frames skip the full-frame stage 1: the faces found on the key frames before and after
  (and boxes interpolated between them) are the candidates that stages 2 and 3 check and refine in that frame.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torchvision.ops import batched_nms

STAGE_THRESHOLDS = (0.6, 0.7, 0.7)   # facenet's defaults for the candidate stages; min_confidence filters the result
PYRAMID_FACTOR = 0.709               # image pyramid step (facenet's default)


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
    pixel count); boxes come back in the frame's own pixels. Frames of equal size are detected in one batch. With
    `key_frame_every` k > 1, consecutive frames of one size (a video's sampled frames) get the full search on every
    k-th frame and on the last; the frames between only re-check the faces found on their neighbouring key frames, so
    a face that appears and leaves between two key frames is missed. Re-checking assumes a face is near where a key
    frame saw it: frames whose times (`detect_many`) lie more than `recheck_within_seconds` apart each get the full
    search, since a face moves or the scene cuts in that time.
    """

    def __init__(self, min_face_size: int = 40, min_confidence: float = 0.95, max_side: int = 1024,
                 max_faces: int = 8, key_frame_every: int = 1, recheck_within_seconds: float = 0.5):
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        self.min_face_size = min_face_size
        self.min_confidence = min_confidence
        self.max_side = max_side
        self.max_faces = max_faces
        self.key_frame_every = max(1, key_frame_every)
        self.recheck_within_seconds = recheck_within_seconds
        self._pnet, self._rnet, self._onet = PNet().eval(), RNet().eval(), ONet().eval()
        self._lock = threading.Lock()          # one detector, shared by the engine's prepare threads

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        return self.detect_many([rgb])[0]

    def detect_many(self, frames: list[np.ndarray], times: list[float | None] | None = None
                    ) -> list[list[DetectedFace]]:
        """Faces per frame, largest first, at most `max_faces` per frame. `times` (seconds, one per frame; a single
        photo's is None) lets frames far apart in time skip the re-check (class docstring)."""
        gaps = np.diff(times) if times is not None and len(times) > 1 else np.zeros(0)
        every = 1 if gaps.size and float(gaps.max()) > self.recheck_within_seconds else self.key_frame_every
        results: list[list[DetectedFace]] = [[] for _ in frames]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, frame in enumerate(frames):
            groups.setdefault(frame.shape[:2], []).append(index)
        for (height, width), indices in groups.items():
            if min(height, width) < self.min_face_size:
                continue                     # no face of the minimum size fits (and MTCNN's pyramid would be empty)
            scale = min(1.0, self.max_side / max(height, width))
            small = [_resized(frames[i], scale) for i in indices]
            # the smallest window must still catch faces of min_face_size after downscaling
            min_face = max(12, int(self.min_face_size * scale * 0.9))
            with self._lock, torch.inference_mode():
                boxes, frame_of, points = self._cascade(small, min_face, every)
            boxes, frame_of, points = boxes.numpy(), frame_of.numpy(), points.numpy()
            for position, index in enumerate(indices):
                mine = frame_of == position
                results[index] = self._keep(boxes[mine], points[mine], scale)
        return results

    def _cascade(self, frames: list[np.ndarray], min_face: int, key_frame_every: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(boxes [N, 5] with score, frame index [N], landmarks [N, 5, 2]) in the pixels of `frames` (equal sizes)."""
        count = len(frames)
        key = sorted(set(range(0, count, key_frame_every)) | {count - 1})
        candidates, frame_of = _candidates(self._pnet, [frames[i] for i in key], min_face)
        boxes, frame_of, points = self._refine(frames, candidates, torch.as_tensor(key)[frame_of])
        if len(key) == count:
            return boxes, frame_of, points
        tracked, tracked_frames = _between_key_frames(boxes, frame_of, key)
        more_boxes, more_frames, more_points = self._refine(frames, tracked, tracked_frames)
        return (torch.cat([boxes, more_boxes]), torch.cat([frame_of, more_frames]),
                torch.cat([points, more_points]))

    def _refine(self, frames: list[np.ndarray], boxes: torch.Tensor, frame_of: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """MTCNN stages 2 (R-net) and 3 (O-net) on candidate boxes [N, 5]: accepted boxes, frames, landmarks."""
        from facenet_pytorch.models.utils.detect_face import batched_nms_numpy, bbreg, rerec

        empty = (torch.zeros(0, 5), torch.zeros(0, dtype=torch.long), torch.zeros(0, 5, 2))
        boxes, frame_of, outputs = _stage(self._rnet, frames, rerec(boxes.clone()), frame_of, 24, STAGE_THRESHOLDS[1])
        if len(boxes) == 0:
            return empty
        (regression,) = outputs
        pick = batched_nms(boxes[:, :4], boxes[:, 4], frame_of, 0.7)
        boxes = rerec(bbreg(boxes[pick], regression[pick]))

        boxes, frame_of, outputs = _stage(self._onet, frames, boxes, frame_of[pick], 48, STAGE_THRESHOLDS[2])
        if len(boxes) == 0:
            return empty
        regression, marks = outputs
        widths = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        heights = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = torch.stack([widths * marks[:, :5] + boxes[:, :1] - 1,
                              heights * marks[:, 5:] + boxes[:, 1:2] - 1], dim=2)
        boxes = bbreg(boxes, regression)
        pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], frame_of, 0.7, "Min")
        return boxes[pick], frame_of[pick], points[pick]

    def _keep(self, boxes: np.ndarray, points: np.ndarray, scale: float) -> list[DetectedFace]:
        faces = []
        for box, marks in zip(boxes, points):
            face = DetectedFace(box=np.asarray(box[:4], np.float32) / scale, confidence=float(box[4]),
                                landmarks=np.asarray(marks, np.float32).reshape(5, 2) / scale)
            if face.confidence >= self.min_confidence and face.size >= self.min_face_size:
                faces.append(face)
        faces.sort(key=lambda f: -f.size)
        return faces[: self.max_faces]


def _candidates(pnet: torch.nn.Module, frames: list[np.ndarray], min_face: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """MTCNN stage 1: P-net over an image pyramid whose first level maps `min_face` px to P-net's 12 px window."""
    from facenet_pytorch.models.utils.detect_face import generateBoundingBox

    height, width = frames[0].shape[:2]
    scale = 12.0 / min_face
    boxes, frame_of = [], []
    while min(height, width) * scale >= 12:
        size = (int(width * scale + 1), int(height * scale + 1))
        level = np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames])
        regression, probabilities = pnet(_net_input(level))
        level_boxes, level_frames = generateBoundingBox(regression, probabilities[:, 1], scale, STAGE_THRESHOLDS[0])
        pick = batched_nms(level_boxes[:, :4], level_boxes[:, 4], level_frames, 0.5)
        boxes.append(level_boxes[pick])
        frame_of.append(level_frames[pick])
        scale *= PYRAMID_FACTOR
    if not boxes:
        return torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)
    boxes, frame_of = torch.cat(boxes), torch.cat(frame_of)
    pick = batched_nms(boxes[:, :4], boxes[:, 4], frame_of, 0.7)
    boxes, frame_of = boxes[pick], frame_of[pick]
    width_, height_ = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    regressed = torch.stack([boxes[:, 0] + boxes[:, 5] * width_, boxes[:, 1] + boxes[:, 6] * height_,
                             boxes[:, 2] + boxes[:, 7] * width_, boxes[:, 3] + boxes[:, 8] * height_, boxes[:, 4]], 1)
    return regressed, frame_of


def _stage(net: torch.nn.Module, frames: list[np.ndarray], boxes: torch.Tensor, frame_of: torch.Tensor, size: int,
           threshold: float) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """One refinement stage: `size` px crops of the boxes through `net`. The boxes whose face probability passes
    `threshold` (rescored with it), their frames, and the net's other outputs for them (regression, O-net's
    landmarks); no boxes and no outputs when no box overlaps its frame."""
    crops, inside = _crops(frames, boxes, frame_of, size)
    boxes, frame_of = boxes[inside], frame_of[inside]
    if len(boxes) == 0:                  # the nets cannot run on an empty batch
        return torch.zeros(0, 5), frame_of, []
    *others, probabilities = _run(net, crops)
    passed = probabilities[:, 1] > threshold
    return (torch.cat([boxes[passed, :4], probabilities[passed, 1:2]], dim=1), frame_of[passed],
            [output[passed] for output in others])


def _run(net: torch.nn.Module, crops: torch.Tensor, chunk: int = 256) -> tuple[torch.Tensor, ...]:
    """R-net / O-net outputs over all crops, in chunks of channels-last tensors (both about 2x faster on CPU than one
    huge NCHW batch)."""
    outputs = [net(crops[start:start + chunk].contiguous(memory_format=torch.channels_last))
               for start in range(0, len(crops), chunk)]
    return tuple(torch.cat(parts) for parts in zip(*outputs))


def _net_input(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC images as MTCNN's input: scaled to [-1, 1), an NCHW view with channels-last strides."""
    return ((torch.from_numpy(images).float() - 127.5) * 0.0078125).permute(0, 3, 1, 2)


def _crops(frames: list[np.ndarray], boxes: torch.Tensor, frame_of: torch.Tensor, size: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized size x size crops of each box (the part inside the frame, area-resized, as facenet cuts them) and
    the mask of boxes that overlap the frame at all."""
    height, width = frames[0].shape[:2]
    whole = boxes[:, :4].trunc().int()
    x0, y0 = (whole[:, 0].clamp(min=1) - 1).tolist(), (whole[:, 1].clamp(min=1) - 1).tolist()
    x1, y1 = whole[:, 2].clamp(max=width).tolist(), whole[:, 3].clamp(max=height).tolist()
    inside = [right > left and bottom > top for left, top, right, bottom in zip(x0, y0, x1, y1)]
    crops = [cv2.resize(frames[frame][top:bottom, left:right], (size, size), interpolation=cv2.INTER_AREA)
             for frame, left, top, right, bottom, keep in zip(frame_of.tolist(), x0, y0, x1, y1, inside) if keep]
    batch = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    return _net_input(batch), torch.tensor(inside, dtype=torch.bool)


def _between_key_frames(boxes: torch.Tensor, frame_of: torch.Tensor, key: list[int]
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate boxes for the frames between key frames: the faces of the key frame before and after, and for each
    before/after pair of similar size the box interpolated at the frame's position (a face moving between them)."""
    candidates, frames = [], []
    for before, after in zip(key, key[1:]):
        first, last = boxes[frame_of == before, :4], boxes[frame_of == after, :4]
        sides_first = (first[:, 2:] - first[:, :2]).max(dim=1).values
        sides_last = (last[:, 2:] - last[:, :2]).max(dim=1).values
        similar = (sides_first[:, None] / sides_last[None, :]).clamp(min=1e-6)
        pairs = ((similar > 2 / 3) & (similar < 3 / 2)).nonzero().tolist()
        for frame in range(before + 1, after):
            t = (frame - before) / (after - before)
            moved = [first[i] * (1 - t) + last[j] * t for i, j in pairs]
            found = torch.cat([first, last, *(m[None] for m in moved)])
            candidates.append(torch.cat([found, torch.ones(len(found), 1)], dim=1))
            frames.append(torch.full((len(found),), frame, dtype=torch.long))
    if not candidates:
        return torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)
    return torch.cat(candidates), torch.cat(frames)


def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return np.ascontiguousarray(rgb)
    height, width = rgb.shape[:2]
    return cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))),
                      interpolation=cv2.INTER_AREA)
