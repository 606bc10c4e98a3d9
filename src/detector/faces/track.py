"""Following the same face across sampled video frames by box overlap (IoU)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Track:
    track_id: int
    detections: list[tuple[int, int]] = field(default_factory=list)   # (frame index, face index within frame)
    last_box: np.ndarray | None = None
    last_frame: int = -1


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def track_faces(boxes_per_frame: list[list[np.ndarray]], min_iou: float = 0.3, max_gap: int = 3) -> list[Track]:
    """Greedy frame-to-frame association: each box joins the open track whose last box overlaps it most.

    A track stays open for `max_gap` frames without a match (a missed detection or a turned head); boxes that match
    nothing start new tracks. Returns tracks ordered by first appearance.
    """
    tracks: list[Track] = []
    for frame_index, boxes in enumerate(boxes_per_frame):
        open_tracks = [t for t in tracks if frame_index - t.last_frame <= max_gap]
        pairs = sorted(((iou(t.last_box, box), ti, bi) for ti, t in enumerate(open_tracks)
                        for bi, box in enumerate(boxes)), reverse=True)
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < min_iou or ti in used_tracks or bi in used_boxes:
                continue
            used_tracks.add(ti)
            used_boxes.add(bi)
            _extend(open_tracks[ti], frame_index, bi, boxes[bi])
        for bi, box in enumerate(boxes):
            if bi not in used_boxes:
                track = Track(track_id=len(tracks))
                _extend(track, frame_index, bi, box)
                tracks.append(track)
    return tracks


def _extend(track: Track, frame_index: int, face_index: int, box: np.ndarray) -> None:
    track.detections.append((frame_index, face_index))
    track.last_box = np.asarray(box, np.float64)
    track.last_frame = frame_index
