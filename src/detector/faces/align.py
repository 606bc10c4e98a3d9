"""The one face crop used at training and at inference: rotate the eyes level, square box with a margin, resize."""

from __future__ import annotations

import cv2
import numpy as np

from .detect import DetectedFace

CROP_SIZE = 224
CROP_MARGIN = 0.15          # added to the larger side of the MTCNN box (which already spans brow to chin)


def crop_transform(face: DetectedFace, frame_shape: tuple[int, ...], size: int = CROP_SIZE,
                   margin: float = CROP_MARGIN) -> np.ndarray:
    """2x3 affine matrix mapping frame pixels to crop pixels (rotation + uniform scale + shift).

    The square is the box's larger side plus the margin, turned so the eyes are level. Where it would reach past the
    frame it is shifted (and if need be shrunk) to stay inside, so crops never show padding: tightly framed photos
    then give zoomed-in crops instead of mirrored or black borders that a model could key on.
    """
    height, width = frame_shape[:2]
    left_eye, right_eye = face.landmarks[0], face.landmarks[1]
    angle = float(np.degrees(np.arctan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0])))
    x0, y0, x1, y1 = (float(v) for v in face.box)
    side = max(x1 - x0, y1 - y0) * (1.0 + margin)
    spread = abs(np.cos(np.radians(angle))) + abs(np.sin(np.radians(angle)))   # rotated square's extent / side
    side = max(1.0, min(side, width / spread, height / spread))
    half_extent = side * spread / 2.0
    center = (float(np.clip((x0 + x1) / 2.0, half_extent, width - half_extent)),
              float(np.clip((y0 + y1) / 2.0, half_extent, height - half_extent)))
    matrix = cv2.getRotationMatrix2D(center, angle, size / side)
    matrix[:, 2] += np.array([size / 2.0 - center[0], size / 2.0 - center[1]])
    return matrix


def align_crop(rgb: np.ndarray, face: DetectedFace, size: int = CROP_SIZE,
               margin: float = CROP_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """(size x size x 3 uint8 crop, 2x3 frame->crop matrix).

    Large faces are first shrunk with area interpolation (a plain affine warp would alias). The crop stays inside the
    frame (see crop_transform); mirroring only covers sub-pixel rounding at its edge.
    """
    matrix = crop_transform(face, rgb.shape, size, margin)
    shrink = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    source = rgb
    warp = matrix.copy()
    if shrink < 0.5:
        height, width = rgb.shape[:2]
        new_size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        source = cv2.resize(rgb, new_size, interpolation=cv2.INTER_AREA)
        fx, fy = new_size[0] / width, new_size[1] / height
        warp[:, 0] /= fx
        warp[:, 1] /= fy
    crop = cv2.warpAffine(source, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return crop, matrix


def map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to N x 2 points."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    return points @ matrix[:, :2].T + matrix[:, 2]
