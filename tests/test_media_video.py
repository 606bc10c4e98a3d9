"""Video: frames sampled evenly with correct timestamps from every container, by seeking or in one pass."""

from __future__ import annotations

import av
import numpy as np
import pytest

from detector.config import Limits
from detector.media import AudioMedia, MediaError, MediaInput, VideoMedia, decode
from detector.media import video as video_module

from conftest import frame_index, index_frame


def _decode_video(path, limits: Limits = Limits()) -> VideoMedia:
    media = decode(MediaInput.from_path(path), limits)
    assert isinstance(media, VideoMedia)
    assert len(media.frames) == len(media.timestamps) > 0
    assert all(frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 for frame in media.frames)
    assert media.timestamps == sorted(set(media.timestamps))
    return media


def _assert_frames_match_timestamps(media: VideoMedia, fps: float = 10.0) -> None:
    """Each generated frame carries its index (conftest.index_frame): the timestamp must point at that frame."""
    for seconds, frame in zip(media.timestamps, media.frames):
        assert frame_index(frame) == round(seconds * fps), seconds


@pytest.mark.parametrize("name", ["mp4_h264", "mp4_mpeg4_with_audio", "mov", "mkv", "webm", "avi", "mpeg_ts", "m2ts",
                                  "mpeg_ps"])
def test_short_video_gives_every_frame_when_fewer_than_asked(sample_media, name):
    media = _decode_video(sample_media[name])
    assert media.duration == pytest.approx(2.0, abs=0.11)       # MPEG-PS estimates 1.9 s: the last frame's start
    assert media.fps == pytest.approx(10.0)
    assert len(media.frames) == 20
    assert media.timestamps[0] == pytest.approx(0.0) and media.timestamps[-1] == pytest.approx(1.9)
    assert media.frames[0].shape == (48, 64, 3)
    _assert_frames_match_timestamps(media)


def test_frames_are_sampled_evenly(sample_media):
    media = _decode_video(sample_media["mkv"], Limits(video_frames=4))
    assert len(media.frames) == 4
    targets = [0.25, 0.75, 1.25, 1.75]
    assert all(abs(t - target) <= 0.1 for t, target in zip(media.timestamps, targets))
    _assert_frames_match_timestamps(media)


def test_seeking_and_one_pass_pick_the_same_frames(sample_media, monkeypatch):
    path = sample_media["mp4_long_gop10"]               # 100 frames, keyframe every 10
    sought = _decode_video(path, Limits(video_frames=6))
    monkeypatch.setattr(video_module, "_SEEK_WHEN_FRAMES_PER_SAMPLE", 10**9)
    one_pass = _decode_video(path, Limits(video_frames=6))
    assert len(sought.frames) == 6
    assert sought.timestamps == one_pass.timestamps
    for a, b in zip(sought.frames, one_pass.frames):
        assert np.array_equal(a, b)
    _assert_frames_match_timestamps(sought)
    targets = [(i + 0.5) * 10.0 / 6 for i in range(6)]
    assert all(abs(t - target) <= 0.1 for t, target in zip(sought.timestamps, targets))


def test_seeking_is_used_for_long_videos(sample_media, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a long video was decoded in one pass")
    monkeypatch.setattr(video_module, "_sample_sequentially", refuse)
    assert len(_decode_video(sample_media["mp4_long_gop10"], Limits(video_frames=4)).frames) == 4



def test_seeking_never_decodes_a_long_gop_twice(tmp_path, monkeypatch):
    """With a keyframe every 50 frames and a sample every 17, seeking back to the keyframe for each sample decoded
    each GOP three times; now decoding goes on from where it is when the target's keyframe is behind it: the same
    frames as one pass, and no more frames decoded than one pass."""
    from conftest import write_video

    path = write_video(tmp_path / "gop50.mp4", "libx264", "mp4", frames=100, gop=50)
    decoded = []
    real_decoded_frames = video_module._decoded_frames

    def counting(container, stream, *wanted_from):
        for frame in real_decoded_frames(container, stream, *wanted_from):
            decoded.append(frame.time)
            yield frame

    monkeypatch.setattr(video_module, "_decoded_frames", counting)
    sought = _decode_video(path, Limits(video_frames=6))
    seeking_cost = len(decoded)
    decoded.clear()
    monkeypatch.setattr(video_module, "_SEEK_WHEN_FRAMES_PER_SAMPLE", 10**9)
    one_pass = _decode_video(path, Limits(video_frames=6))
    assert sought.timestamps == one_pass.timestamps and len(sought.frames) == 6
    assert all(np.array_equal(a, b) for a, b in zip(sought.frames, one_pass.frames))
    _assert_frames_match_timestamps(sought)
    assert seeking_cost <= len(decoded), (seeking_cost, len(decoded))


def test_frames_nothing_references_are_skipped_before_a_target_and_the_same_frames_come_out(tmp_path, monkeypatch):
    """x264's B-frames that no frame references are not decoded while they show before the next target; the frames
    picked are exactly those of a decode of every frame, with fewer frames decoded."""
    from conftest import write_video

    path = write_video(tmp_path / "bframes.mp4", "libx264", "mp4", frames=100, gop=50)
    real_decoded_frames = video_module._decoded_frames
    decoded = []

    def counting(container, stream, *wanted_from):
        for frame in real_decoded_frames(container, stream, *wanted_from):
            decoded.append(frame.time)
            yield frame

    def every_frame(container, stream, *wanted_from):
        for frame in real_decoded_frames(container, stream):
            decoded.append(frame.time)
            yield frame

    monkeypatch.setattr(video_module, "_SEEK_WHEN_FRAMES_PER_SAMPLE", 10**9)      # one pass: the longest decode
    monkeypatch.setattr(video_module, "_decoded_frames", counting)
    skipping = _decode_video(path, Limits(video_frames=6))
    skipping_cost = len(decoded)
    decoded.clear()
    monkeypatch.setattr(video_module, "_decoded_frames", every_frame)
    full = _decode_video(path, Limits(video_frames=6))
    assert skipping.timestamps == full.timestamps and len(full.frames) == 6
    assert all(np.array_equal(a, b) for a, b in zip(skipping.frames, full.frames))
    assert skipping_cost < len(decoded), (skipping_cost, len(decoded))

def test_display_rotation_is_applied(sample_media):
    frame = _decode_video(sample_media["mp4_rotated"]).frames[0]
    # Stored 64 wide x 32 high with the left half white and a 90 degree counter-clockwise display rotation
    # (as ffmpeg shows it): upright it is 32 wide x 64 high with the white half at the bottom.
    assert frame.shape == (64, 32, 3)
    assert frame[:24].mean() < 30 and frame[-24:].mean() > 225


def test_unknown_duration_is_measured_from_packets(sample_media):
    path = sample_media["mkv_no_duration"]
    with av.open(str(path)) as container:
        assert container.duration is None and container.streams.video[0].duration is None
    media = _decode_video(path)
    assert media.duration == pytest.approx(2.0, abs=0.11)
    assert len(media.frames) == 20
    _assert_frames_match_timestamps(media)


def test_limits_refuse_long_or_huge_video(sample_media):
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_path(sample_media["mp4_h264"]), Limits(max_video_seconds=1.5))
    assert error.value.code == "too_large" and "video lasts" in error.value.message
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_path(sample_media["mp4_h264"]), Limits(max_pixels=64 * 47))
    assert error.value.code == "too_large" and "64x48" in error.value.message


def test_audio_only_containers_decode_as_audio(sample_media):
    for name in ("mp4_audio_only", "webm_audio_only"):
        assert isinstance(decode(MediaInput.from_path(sample_media[name]), Limits()), AudioMedia)


def test_video_with_no_decodable_frames(sample_media):
    data = bytearray(sample_media["mkv"].read_bytes())
    with av.open(str(sample_media["mkv"])) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    for position, size in packets:
        data[position:position + size] = bytes(size)
    with pytest.raises(MediaError) as error:
        decode(MediaInput.from_bytes(bytes(data)), Limits())
    assert error.value.code == "corrupt" and error.value.message == "no decodable video frames"


def test_soundtrack_is_decoded_with_the_frames(sample_media):
    with_audio = decode(MediaInput.from_path(sample_media["mp4_mpeg4_with_audio"]), Limits())
    assert with_audio.soundtrack.duration == pytest.approx(2.0, abs=0.1) and with_audio.soundtrack_error is None
    assert with_audio.soundtrack.sample_rate == 16_000 and with_audio.soundtrack.samples.dtype == np.float32
    silent = decode(MediaInput.from_path(sample_media["mp4_h264"]), Limits())
    assert silent.soundtrack is None and silent.soundtrack_error is None


def test_a_bad_soundtrack_is_reported_and_the_frames_still_decode(sample_media):
    media = decode(MediaInput.from_path(sample_media["mpeg_ts"]), Limits(max_audio_seconds=1.0))
    assert len(media.frames) == 20 and media.soundtrack is None
    assert media.soundtrack_error.startswith("audio lasts 2.")

    data = bytearray(sample_media["mp4_mpeg4_with_audio"].read_bytes())
    with av.open(str(sample_media["mp4_mpeg4_with_audio"])) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.audio[0]) if p.size]
    for position, size in packets:
        data[position:position + size] = bytes(size)
    damaged = decode(MediaInput.from_bytes(bytes(data)), Limits())
    assert len(damaged.frames) == 20 and damaged.soundtrack is None and damaged.soundtrack_error


def test_video_from_bytes_matches_video_from_path(sample_media):
    path = sample_media["webm"]
    from_bytes = decode(MediaInput.from_bytes(path.read_bytes()), Limits(video_frames=5))
    from_path = decode(MediaInput.from_path(path), Limits(video_frames=5))
    assert from_bytes.timestamps == from_path.timestamps


def test_metadata_in_a_legacy_encoding_does_not_stop_decoding(tmp_path):
    path = tmp_path / "gbk_title.mp4"
    with av.open(str(path), "w", format="mp4", metadata_encoding="gbk") as out:
        out.metadata["title"] = "深度伪造检测"
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(index_frame(index), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(UnicodeDecodeError):
        av.open(str(path)).close()                                 # PyAV's strict default would refuse it
    assert len(_decode_video(path).frames) == 3
