"""Which files torchcodec misreads, told by the probed container name or else by the file's first bytes.

torchcodec's exact mode returns wrong frames after a seek in containers without an index (MPEG-TS, MPEG-PS) and in
AVIs of codecs that reorder frames (:func:`torchcodec_misreads`): ``sf2t.video.backends`` sends such files to PyAV
(``choose_decoder``), and its torchcodec backend refuses them. Plain Python: nothing here imports torch or a decoder.
"""

from __future__ import annotations

# codecs whose every frame is a keyframe: nothing is reordered, torchcodec reads their AVIs right
INTRA_ONLY_CODECS = frozenset(
    "mjpeg rawvideo png ffv1 huffyuv ffvhuff utvideo magicyuv dnxhd prores jpeg2000 jpegls ljpeg v210 r210".split()
)


def sniff_container(path: str) -> str | None:
    """``mpegts``, ``mpeg`` (MPEG-PS) or ``avi`` (the libavformat names) by the file's first bytes, else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(4 + 192 * 3)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x00\x00\x01\xba":  # an MPEG pack header
        return "mpeg"
    if any(
        len(head) > off + 2 * step and all(head[off + i * step] == 0x47 for i in range(3))
        for off, step in ((0, 188), (4, 192))
    ):
        return "mpegts"
    return None


def torchcodec_misreads(path: str, container: str | None = None, codec: str | None = None) -> str | None:
    """What the file is, where torchcodec's exact mode returns wrong frames after a seek (None: not such a file), by the
    probed container name when given, else by the file's bytes (:func:`sniff_container`; the extension is not
    trusted). Measured with torchcodec 0.17 on clips whose frames carry their own index:

    * MPEG-TS (no index): an H.264 .ts with B-frames and 8-frame GOPs gave frame 8 for frames 0-5, 32 for 30;
    * MPEG-PS (.mpg, .vob; no index): MPEG-1/2 with B-frames gave frame k-1 for frames 1-6, frame 12 for 9-11;
    * AVI of a codec that reorders frames (B-frames: MPEG-4 Part 2 / Xvid / DivX, H.264): frame k-1 for most k,
      "no more frames" errors for a full read. Intra-only codecs (MJPEG, ...) read right. H.264 without B-frames
      read right too, but whether a stream has B-frames is not known before decoding it, so every AVI of a codec
      that may reorder counts as one that does (PyAV reads it), as does an AVI whose codec is unknown (no probe)."""
    kind = container or sniff_container(path)
    if kind == "mpegts":
        return "an MPEG-TS file"
    if kind == "mpeg":
        return "an MPEG-PS file"
    if kind == "avi" and codec not in INTRA_ONLY_CODECS:
        return f"an AVI file of {codec}" if codec else "an AVI file"
    return None


def is_mpegts(path: str, container: str | None = None) -> bool:
    """An MPEG transport stream: by the probed container name when given, else by its bytes (sync byte 0x47 every
    188 bytes, or every 192 with M2TS's 4-byte prefix; the extension is not trusted). A container without an index,
    where torchcodec's exact mode returns wrong frames after a seek (torchcodec 0.17, an H.264 .ts with B-frames and
    8-frame GOPs: frame 8 for frames 0-5, frame 32 for 30; "no more frames" errors for the last GOP)."""
    return (container or sniff_container(path)) == "mpegts"
