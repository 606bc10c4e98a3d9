"""Blended faces for training, made from real faces alone. Self-blended images (Shiohara & Yamasaki, CVPR 2022): a
real face blended with a colour/geometry-transformed copy of itself through a deformed landmark-hull mask; they carry
the blending boundary and colour mismatch that face swaps leave, without any deepfake in the training data. Cross
blends (Face X-ray's blended images) put another real person's face inside the same kind of mask."""

from __future__ import annotations

import cv2
import numpy as np


class LandmarkFinder:
    """dlib's 68-point shape predictor (weights from the face-recognition-models package)."""

    def __init__(self):
        import dlib
        import face_recognition_models

        self._predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
        self._dlib = dlib

    def find(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """68 x 2 landmarks inside `box` (x0, y0, x1, y1; an MTCNN box mapped into this image), or None."""
        x0, y0, x1, y1 = (float(v) for v in box)
        # dlib's predictor expects its own detector's tighter boxes: shrink MTCNN's (which reaches the hairline)
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2 + 0.05 * (y1 - y0), 0.42 * max(x1 - x0, y1 - y0)
        rect = self._dlib.rectangle(int(cx - half), int(cy - half), int(cx + half), int(cy + half))
        shape = self._predictor(np.ascontiguousarray(rgb), rect)
        points = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
        if points.shape != (68, 2) or not np.isfinite(points).all():
            return None
        return points


def hull_mask(landmarks: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Float mask (H x W, 0..1) of the face hull; sometimes raised over the forehead, sometimes only the inner face."""
    points = landmarks.astype(np.float32).copy()
    choice = rng.integers(3)
    if choice == 1:                       # extend the brows up toward the hairline
        brows = points[17:27].copy()
        lift = (points[8, 1] - points[27, 1]) * rng.uniform(0.2, 0.5)
        brows[:, 1] -= lift
        points = np.concatenate([points, brows])
    elif choice == 2:                     # inner face: brows, eyes, nose, mouth and the lower jaw only
        points = np.concatenate([points[2:15], points[17:68]])
    mask = np.zeros(shape, np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(points.astype(np.int32)), 1.0)
    return mask


def deform_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Elastic wobble, a random grow/shrink and a soft edge of random width."""
    height, width = mask.shape
    alpha, sigma = rng.uniform(10, 30), rng.uniform(6, 10)
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (height, width)).astype(np.float32), (0, 0), sigma) * alpha
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (height, width)).astype(np.float32), (0, 0), sigma) * alpha
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    mask = cv2.remap(mask, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(rng.integers(3, 15)) | 1,) * 2)
    mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    blur = int(rng.integers(5, 31)) | 1
    mask = cv2.GaussianBlur(mask, (blur, blur), 0)
    if rng.random() < 0.5:                 # a harder edge inside a soft one, as SBI does
        mask = cv2.GaussianBlur((mask > 0.5).astype(np.float32) * mask, (blur, blur), 0)
    return np.clip(mask, 0.0, 1.0)


def color_shift(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-channel offsets, hue/saturation/value shifts, contrast and brightness: a different face's colouring."""
    image = rgb.astype(np.float32)
    image += rng.uniform(-20, 20, 3)
    hsv = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-8, 8)) % 180
    hsv[..., 1] *= rng.uniform(0.8, 1.2)
    hsv[..., 2] *= rng.uniform(0.85, 1.15)
    image = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    image = (image - 128.0) * rng.uniform(0.85, 1.15) + 128.0 + rng.uniform(-15, 15)
    return np.clip(image, 0, 255).astype(np.uint8)


def texture_shift(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sharpen, blur or resample: the generated face rarely has the frame's own sharpness."""
    choice = rng.integers(3)
    if choice == 0:
        blurred = cv2.GaussianBlur(rgb, (0, 0), rng.uniform(0.8, 1.5))
        return cv2.addWeighted(rgb, 1.0 + rng.uniform(0.3, 1.0), blurred, -rng.uniform(0.3, 1.0), 0)
    if choice == 1:
        return cv2.GaussianBlur(rgb, (0, 0), rng.uniform(0.5, 1.5))
    height, width = rgb.shape[:2]
    factor = rng.uniform(0.4, 0.8)
    small = cv2.resize(rgb, (int(width * factor), int(height * factor)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def geometry_shift(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few pixels of shift and a few percent of scale: the pasted face never sits exactly where the old one was."""
    height, width = rgb.shape[:2]
    scale = rng.uniform(0.95, 1.05)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), rng.uniform(-2, 2), scale)
    matrix[:, 2] += rng.uniform(-0.03, 0.03, 2) * np.array([width, height])
    return cv2.warpAffine(rgb, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def match_colour(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer in Lab: `face` takes the target's mean and spread inside `mask` (nonzero = inside)."""
    inside = mask > 0
    if inside.sum() < 2:                   # no skin to match (a degenerate hull): leave the colours
        return np.clip(face, 0, 255).astype(np.uint8)
    face_lab = cv2.cvtColor(np.clip(face, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    target_lab = cv2.cvtColor(np.ascontiguousarray(target), cv2.COLOR_RGB2LAB).astype(np.float32)
    f, t = face_lab[inside], target_lab[inside]
    face_lab = (face_lab - f.mean(0)) / (f.std(0) + 1e-3) * t.std(0) + t.mean(0)
    return cv2.cvtColor(np.clip(face_lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def _blend(source: np.ndarray, target: np.ndarray, landmarks: np.ndarray,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`source` over `target` through a deformed hull mask of `landmarks`, sometimes only partly opaque."""
    mask = deform_mask(hull_mask(landmarks, target.shape[:2], rng), rng)
    mask *= rng.choice([0.5, 0.75, 1.0, 1.0, 1.0])
    blended = source.astype(np.float32) * mask[..., None] + target.astype(np.float32) * (1.0 - mask[..., None])
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8), mask


def self_blend(rgb: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(blended image, blend mask): one of source/target is recoloured, the source also shifted and re-textured."""
    source, target = rgb.copy(), rgb.copy()
    if rng.random() < 0.5:
        source = color_shift(source, rng)
    else:
        target = color_shift(target, rng)
    if rng.random() < 0.7:
        source = texture_shift(source, rng)
    source = geometry_shift(source, rng)
    return _blend(source, target, landmarks, rng)


def cross_blend(rgb: np.ndarray, landmarks: np.ndarray, donor: np.ndarray, donor_landmarks: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Face X-ray's blended images (Li et al., CVPR 2020): another person's face of similar pose, aligned on the
    landmarks by a similarity transform, mostly recoloured toward the target, blended through the same deformed hull
    mask as a self-blend. The identity inside the mask changes, as in a real face swap."""
    matrix, _ = cv2.estimateAffinePartial2D(donor_landmarks, landmarks)
    if matrix is None:
        return self_blend(rgb, landmarks, rng)
    height, width = rgb.shape[:2]
    source = cv2.warpAffine(donor, matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT_101)
    if rng.random() < 0.7:
        source = match_colour(source, rgb, hull_mask(landmarks, rgb.shape[:2], rng))
    if rng.random() < 0.5:
        source = texture_shift(source, rng)
    return _blend(source, rgb, landmarks, rng)
