"""Faces: MTCNN detection, the shared align/crop used by training and inference, IoU tracking across frames."""

from .align import CROP_MARGIN, CROP_SIZE, align_crop, crop_transform, map_points
from .detect import DetectedFace, FaceFinder
from .track import Track, iou, track_faces

__all__ = ["CROP_MARGIN", "CROP_SIZE", "DetectedFace", "FaceFinder", "Track", "align_crop", "crop_transform",
           "iou", "map_points", "track_faces"]
