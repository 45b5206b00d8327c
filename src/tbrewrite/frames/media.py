"""Images and audio as their encoded bytes, with the sizes and rates stored beside them.

Nothing is decoded into pixels or samples (that needs TensorFlow in tbparse); a WAV
file's header is read for its sample rate, channels and length where the log does not
store them.

* **Images.** TF1 ``Summary.Image`` (TF1, PyTorch, tensorboardX ``add_image``): one image,
  ``width``/``height`` as stored. TF2 (``tf.summary.image``, Keras ``write_images``): a
  string tensor ``[width, height, image_0, image_1, ...]`` under the ``images`` plugin:
  one row per image, ``index`` 0, 1, ...
* **Audio.** TF1 ``Summary.Audio`` (PyTorch, tensorboardX ``add_audio``): ``sample_rate``,
  ``num_channels``, ``length_frames``, ``content_type`` as stored. TF2
  (``tf.summary.audio``): a string tensor ``[k, 2]`` of (encoded audio, label) under the
  ``audio`` plugin (``[k]`` in old logs): one row per clip, its numbers from the WAV
  header (0 where the bytes are not a WAV file).
"""

from __future__ import annotations

import struct
from typing import Any

_DT_STRING = 7

Image = tuple[int, int, int, str, bytes]
"""``(index, width, height, format, encoded bytes)``."""
Audio = tuple[int, float, int, int, str, str, bytes]
"""``(index, sample_rate, num_channels, length_frames, content_type, label, encoded bytes)``."""

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)
EXTENSIONS = {"png": "png", "jpeg": "jpg", "gif": "gif", "bmp": "bmp", "webp": "webp", "wav": "wav"}
"""File name extension of each format :func:`image_format` and :func:`audio_format` name."""


def image_format(data: bytes) -> str:
    """The image format of ``data`` from its first bytes: ``png``, ``jpeg``, ``gif``, ``bmp``, ``webp`` or ``""``."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return ""


def audio_format(data: bytes, content_type: str = "") -> str:
    """``wav`` for a RIFF/WAVE file (or content type ``audio/wav``), else ``""``."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    return "wav" if content_type in ("audio/wav", "audio/x-wav", "audio/wave") else ""


def images_from_image(image: Any) -> list[Image]:
    """The one image of a TF1 ``Summary.Image``."""
    data = bytes(image.encoded_image_string)
    return [(0, int(image.width), int(image.height), image_format(data), data)]


def images_from_tensor(tensor: Any) -> list[Image]:
    """The images of a TF2 image tensor ``[width, height, image...]``.

    Raises:
        ValueError: not a string tensor of rank 1 with at least width and height.
    """
    dims = [d.size for d in tensor.tensor_shape.dim]
    items = _strings(tensor)
    if len(dims) != 1 or len(items) != dims[0] or len(items) < 2:
        raise ValueError(f"an image tensor of shape {dims}, not [2 + k] strings")
    width, height = _int(items[0]), _int(items[1])
    return [(i, width, height, image_format(data), data) for i, data in enumerate(items[2:])]


def audio_from_audio(audio: Any) -> list[Audio]:
    """The one clip of a TF1 ``Summary.Audio``."""
    data = bytes(audio.encoded_audio_string)
    return [
        (0, float(audio.sample_rate), int(audio.num_channels), int(audio.length_frames), audio.content_type, "", data)
    ]


def audio_from_tensor(tensor: Any) -> list[Audio]:
    """The clips of a TF2 audio tensor ``[k, 2]`` (encoded audio, label) or ``[k]``.

    Raises:
        ValueError: not a string tensor of one of these shapes.
    """
    dims = [d.size for d in tensor.tensor_shape.dim]
    items = _strings(tensor)
    pairs = len(dims) == 2 and dims[1] == 2 and len(items) == 2 * dims[0]
    if not (pairs or (len(dims) == 1 and len(items) == dims[0])):
        raise ValueError(f"an audio tensor of shape {dims}, not [k, 2] strings")
    rows = list(zip(items[::2], items[1::2], strict=True)) if pairs else [(data, b"") for data in items]
    clips = []
    for i, (data, label) in enumerate(rows):
        rate, channels, frames = wav_info(data)
        content_type = "audio/wav" if audio_format(data) else ""
        clips.append((i, rate, channels, frames, content_type, label.decode("utf-8", "replace"), data))
    return clips


def wav_info(data: bytes) -> tuple[float, int, int]:
    """``(sample_rate, num_channels, length_frames)`` from a WAV file's header; zeros if it is not one."""
    if audio_format(data) != "wav":
        return 0.0, 0, 0
    rate = 0.0
    channels = block = 0
    frames = 0
    at = 12
    while at + 8 <= len(data):
        chunk, size = data[at : at + 4], struct.unpack_from("<I", data, at + 4)[0]
        body = at + 8
        if chunk == b"fmt " and size >= 16 and body + 16 <= len(data):
            _, channels, sample_rate, _, block = struct.unpack_from("<HHIIH", data, body)
            rate = float(sample_rate)
        elif chunk == b"data":
            size = min(size, len(data) - body)
            frames = size // block if block else 0
            break
        at = body + size + (size & 1)
    return rate, channels, frames


def _strings(tensor: Any) -> list[bytes]:
    """The elements of a string tensor, without going through NumPy (no copy of large images).

    Raises:
        ValueError: not a ``DT_STRING`` tensor.
    """
    if tensor.dtype != _DT_STRING:
        raise ValueError("not a string tensor")
    return list(tensor.string_val)


def _int(item: Any) -> int:
    try:
        return int(item)
    except (TypeError, ValueError):
        return 0
