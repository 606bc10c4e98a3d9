"""The shipped detectors, one subpackage per modality. Registering is cheap: classes import on first use."""

from ..engine.registry import DetectorSpec, register

register(DetectorSpec(
    name="face-forgery",
    modalities=("image", "video"),
    factory="detector.detectors.face.model:FaceForgeryDetector",
    description="face swaps / blending and fully synthetic (GAN, diffusion) faces, per face, tracked across frames",
))
register(DetectorSpec(
    name="synthetic-voice",
    modalities=("audio",),
    factory="detector.detectors.voice.model:SyntheticVoiceDetector",
    description="TTS, neural vocoders and voice conversion, scored in overlapping windows",
))
register(DetectorSpec(
    name="machine-text",
    modalities=("text",),
    factory="detector.detectors.text.model:MachineTextDetector",
    description="AI-written text in English and Chinese: LM statistics + supervised classifier, per span",
))
