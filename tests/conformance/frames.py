"""How the runner and a worker process talk: pickled frames, each after its length (8 bytes, big-endian)."""

from __future__ import annotations

import pickle
import struct
from typing import Any, BinaryIO

HEADER = struct.Struct(">Q")


def encode(message: Any) -> bytes:
    """``message`` as one frame."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def send(stream: BinaryIO, message: Any) -> None:
    """Write ``message`` as one frame and flush."""
    stream.write(encode(message))
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    """Read one frame (EOFError when the stream ends first)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        raise EOFError("the stream ended")
    return pickle.loads(stream.read(HEADER.unpack(header)[0]))
