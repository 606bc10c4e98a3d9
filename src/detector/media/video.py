"""Video: a fixed number of frames sampled evenly over the duration, streamed with PyAV (never the whole video),
and the soundtrack decoded as an audio file is."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np

from detector.config import Limits
from detector.media.audio import decode_audio
from detector.media.container import container_error, open_container
from detector.media.errors import MediaError, decoding_error
from detector.media.image import check_pixels
from detector.media.types import VideoMedia

# Seeking costs a keyframe-to-target decode per sample; it pays off once samples are this many frames apart.
_SEEK_WHEN_FRAMES_PER_SAMPLE = 8


def decode_video(source: Path | bytes, video_format: str, limits: Limits) -> VideoMedia:
    """Sample `limits.video_frames` frames at the centres of equal time slices, with their timestamps in seconds."""
    try:
        return _decode_video(source, video_format, limits)
    except av.FFmpegError as exc:
        raise container_error(exc, f"{video_format.upper()} video") from exc


def _decode_video(source: Path | bytes, video_format: str, limits: Limits) -> VideoMedia:
    with open_container(source) as container:
        stream = _video_stream(container)
        check_pixels(stream.codec_context.width, stream.codec_context.height, limits, "video frame")
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        duration = _declared_duration(container, stream)
        has_audio = bool(container.streams.audio)
    if duration is None:
        duration = _duration_from_packets(source, limits)
    if duration > limits.max_video_seconds:
        raise MediaError("too_large",
                         f"video lasts {duration:,.1f} s, over the limit of {limits.max_video_seconds:,.1f} s")

    count = max(1, limits.video_frames)
    targets = [(i + 0.5) * duration / count for i in range(count)]
    tolerance = 0.5 / fps if fps > 0 else 0.0
    picked: list[tuple[float, np.ndarray]] = []
    if fps > 0 and duration * fps > _SEEK_WHEN_FRAMES_PER_SAMPLE * count:
        picked = _sample_by_seeking(source, start, targets, tolerance, limits)
    if not picked:
        picked = _sample_sequentially(source, start, fps, targets, tolerance, limits)
    if not picked:
        raise MediaError("corrupt", "no decodable video frames")
    media = VideoMedia(
        frames=[frame for _, frame in picked],
        timestamps=[round(t, 6) for t, _ in picked],
        duration=duration,
        fps=fps,
        format=video_format,
    )
    if has_audio:
        try:
            media.soundtrack = decode_audio(source, video_format, limits)
        except Exception as exc:  # noqa: BLE001 - the frames still count: a bad soundtrack is reported with them
            media.soundtrack_error = decoding_error(exc).message
    return media


def _video_stream(container: av.container.InputContainer) -> av.VideoStream:
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        raise MediaError("corrupt", "the container holds no video stream")
    stream = streams[0]
    stream.thread_type = "AUTO"
    return stream


def _declared_duration(container: av.container.InputContainer, stream: av.VideoStream) -> float | None:
    if stream.duration and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    return None


def _duration_from_packets(source: Path | bytes, limits: Limits) -> float:
    """Duration when the header does not say: the end of the last packet (demuxing only, no decoding)."""
    end = 0.0
    with open_container(source) as container:
        stream = _video_stream(container)
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            end = max(end, float((packet.pts + (packet.duration or 0)) * stream.time_base) - start)
            if end > limits.max_video_seconds:
                break
    return end


def _decoded_frames(container: av.container.InputContainer, stream: av.VideoStream,
                    wanted_from: Callable[[], float] | None = None) -> Iterator[av.VideoFrame]:
    """Frames in decode order; a damaged packet is skipped so the rest of the video still counts. `wanted_from`
    gives the stream time (seconds) of the earliest frame still wanted: a frame shown before it that no other frame
    references is not decoded at all (`skip_frame`), since it can never be picked (x264's default output: half of
    the frames, half the decoding time)."""
    context = stream.codec_context
    for packet in container.demux(stream):
        if wanted_from is not None:
            early = packet.pts is not None and float(packet.pts * stream.time_base) < wanted_from()
            context.skip_frame = "NONREF" if early else "DEFAULT"
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue
        yield from frames


def _frame_seconds(frame: av.VideoFrame, start: float, index: int, fps: float) -> float:
    if frame.time is not None:
        return frame.time - start
    return index / fps if fps > 0 else float(index)


def _to_rgb(frame: av.VideoFrame, limits: Limits) -> np.ndarray:
    check_pixels(frame.width, frame.height, limits, "video frame")
    rgb = frame.to_ndarray(format="rgb24")
    # Phones store portrait video sideways with a display rotation; detectors need faces upright.
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


def _sample_sequentially(source: Path | bytes, start: float, fps: float, targets: list[float], tolerance: float,
                         limits: Limits) -> list[tuple[float, np.ndarray]]:
    """One pass: keep the first frame at (or within half a frame of) each target; stop after the last target."""
    picked: list[tuple[float, np.ndarray]] = []
    last: tuple[float, av.VideoFrame] | None = None
    next_target = 0
    with open_container(source) as container:
        stream = _video_stream(container)

        def wanted_from() -> float:                     # reads next_target as it advances
            return start + targets[next_target] - tolerance

        for index, frame in enumerate(_decoded_frames(container, stream, wanted_from)):
            seconds = _frame_seconds(frame, start, index, fps)
            last = (seconds, frame)
            if seconds + tolerance < targets[next_target]:
                continue
            picked.append((seconds, _to_rgb(frame, limits)))
            while next_target < len(targets) and targets[next_target] <= seconds + tolerance:
                next_target += 1
            if next_target == len(targets):
                break
        if not picked and last is not None:
            # Timestamps disagree with the declared duration: the last decodable frame still represents the video.
            picked.append((last[0], _to_rgb(last[1], limits)))
    return picked


def _keyframe_times(container: av.container.InputContainer, stream: av.VideoStream, start: float) -> list[float]:
    """Seconds (from the stream's start) of every keyframe, read from the packets alone (no decoding)."""
    times = [float(packet.pts * stream.time_base) - start for packet in container.demux(stream)
             if packet.is_keyframe and packet.pts is not None]
    return sorted(times)


def _sample_by_seeking(source: Path | bytes, start: float, targets: list[float], tolerance: float,
                       limits: Limits) -> list[tuple[float, np.ndarray]]:
    """Seek to the keyframe before each target and decode forward to it, unless that keyframe is behind the frames
    already decoded: then decoding goes on from there (with long GOPs, e.g. x264's default 250 frames, seeking back
    for every target decoded each GOP several times). Empty when the file cannot seek."""
    picked: list[tuple[float, np.ndarray]] = []
    try:
        with open_container(source) as container:
            stream = _video_stream(container)
            keyframes = _keyframe_times(container, stream, start)
            frames: Iterator[av.VideoFrame] | None = None
            position = float("-inf")                     # time of the last frame decoded
            for target in targets:
                if picked and picked[-1][0] + tolerance >= target:
                    continue                             # the frame already picked stands for this target too
                before = bisect.bisect_right(keyframes, target + tolerance) - 1
                if frames is None or before < 0 or keyframes[before] > position:
                    container.seek(int((start + target) / stream.time_base), stream=stream, backward=True)
                    frames = _decoded_frames(container, stream, lambda: start + target - tolerance)
                for frame in frames:
                    if frame.time is None:
                        return []
                    position = frame.time - start
                    if position + tolerance >= target:
                        picked.append((position, _to_rgb(frame, limits)))
                        break
    except av.FFmpegError:
        return []
    return picked
