"""Cross-identity landmark face swaps, the graphics method behind FaceForensics++'s FaceSwap: another person's face
is warped triangle by triangle onto the target's 68 landmarks, recoloured to the target's skin and blended in. The
detector trains on blends only (`training/sbi.py`), so these evaluate it on a manipulation it never saw: the warp
leaves its own artifacts and Poisson blending its own seam."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from training.sbi import match_colour

JAW_AND_BROWS = slice(0, 27)


def triangles(points: np.ndarray, shape: tuple[int, int]) -> list[tuple[int, int, int]]:
    """Delaunay triangles of `points` as index triples."""
    height, width = shape
    subdiv = cv2.Subdiv2D((0, 0, width, height))
    inside = np.clip(points, 0, [width - 1, height - 1]).astype(np.float32)
    for x, y in inside:
        subdiv.insert((float(x), float(y)))
    lookup = {(round(float(x), 1), round(float(y), 1)): n for n, (x, y) in enumerate(inside)}
    result = []
    for tri in np.asarray(subdiv.getTriangleList(), np.float32).reshape(-1, 3, 2):   # () when no triangle
        indices = tuple(lookup.get((round(float(x), 1), round(float(y), 1))) for x, y in tri)
        if None not in indices:
            result.append(indices)
    return result


def warp_face(source: np.ndarray, source_points: np.ndarray, target_points: np.ndarray,
              shape: tuple[int, int]) -> np.ndarray:
    """`source` warped piecewise-affinely so that its landmarks land on `target_points` (float32 image)."""
    warped = np.zeros((*shape, 3), np.float32)
    source = source.astype(np.float32)
    for tri in triangles(target_points, shape):
        src, dst = source_points[list(tri)].astype(np.float32), target_points[list(tri)].astype(np.float32)
        x, y, w, h = cv2.boundingRect(dst)
        if w <= 0 or h <= 0:
            continue
        matrix = cv2.getAffineTransform(src, dst - np.float32([x, y]))
        patch = cv2.warpAffine(source, matrix, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT_101)
        mask = np.zeros((h, w), np.float32)
        cv2.fillConvexPoly(mask, np.int32(np.round(dst - [x, y])), 1.0)
        y1, x1 = min(y + h, shape[0]), min(x + w, shape[1])
        x0, y0 = max(x, 0), max(y, 0)
        if x1 <= x0 or y1 <= y0:
            continue
        patch, mask = patch[y0 - y:y1 - y, x0 - x:x1 - x], mask[y0 - y:y1 - y, x0 - x:x1 - x, None]
        warped[y0:y1, x0:x1] = warped[y0:y1, x0:x1] * (1 - mask) + patch * mask
    return warped


def landmark_swap(target: np.ndarray, target_points: np.ndarray, source: np.ndarray, source_points: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """`source`'s face on `target` (both RGB uint8 with 68 x 2 landmarks): warped, recoloured, then Poisson-blended
    (half the time) or alpha-blended through a feathered hull mask."""
    shape = target.shape[:2]
    hull = cv2.convexHull(np.int32(np.round(target_points[JAW_AND_BROWS])))
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    face = match_colour(warp_face(source, source_points, target_points, shape), target, mask)
    x, y, w, h = cv2.boundingRect(mask)
    fits = x > 1 and y > 1 and x + w < shape[1] - 1 and y + h < shape[0] - 1
    if fits and rng.random() < 0.5:
        return cv2.seamlessClone(face, target, mask, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    blur = int(rng.integers(7, 25)) | 1
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (blur, blur), 0)[..., None]
    return np.clip(face * alpha + target * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)


def pose_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Procrustes distances between 68-point sets, after removing position, scale and in-plane
    rotation (2-D points as complex numbers: the residual is sqrt(2 - 2|<a, b>|) for centred unit-norm shapes).
    Swaps are made between faces of similar pose and shape, as a face-swap tool would pick its frames."""
    a, b = (p[..., 0].astype(np.float64) + 1j * p[..., 1] for p in (np.asarray(a), np.asarray(b)))
    a, b = (z - z.mean(axis=1, keepdims=True) for z in (a, b))
    a, b = (z / np.linalg.norm(z, axis=1, keepdims=True) for z in (a, b))
    return np.sqrt(np.clip(2.0 - 2.0 * np.abs(a.conj() @ b.T), 0.0, None))


def pose_neighbours(landmarks: np.ndarray, groups: Sequence[str], count: int) -> list[list[int]]:
    """For each 68-point set, the positions of the `count` sets of other groups (other people, as far as the sources
    tell) closest in pose and shape, nearest first: donors for swaps and cross blends."""
    distances = pose_distances(landmarks, landmarks)
    group_array = np.asarray(groups)
    distances[group_array[:, None] == group_array[None, :]] = np.inf
    return [[int(i) for i in np.argsort(row, kind="stable")[:count] if np.isfinite(row[i])] for row in distances]
