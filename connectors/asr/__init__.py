"""Speech recognition for the abuse-detection stream: transcribers and packaged weights.

Nothing here imports a model library at import time: faster-whisper and whisperx are loaded
by :func:`load_transcriber` only, so the rest of CallGuard runs without the ``asr`` extra.
The packaged weights live in :mod:`connectors.asr.weights` (also a command:
``python -m connectors.asr.weights``), imported on demand.
"""

from connectors.asr.transcriber import (
    BACKENDS,
    FakeTranscriber,
    FasterWhisperTranscriber,
    Transcriber,
    TranscriberError,
    Transcript,
    WhisperXTranscriber,
    load_transcriber,
    pcm16_to_whisper,
)

__all__ = [
    "BACKENDS",
    "FakeTranscriber",
    "FasterWhisperTranscriber",
    "Transcriber",
    "TranscriberError",
    "Transcript",
    "WhisperXTranscriber",
    "load_transcriber",
    "pcm16_to_whisper",
]
