"""Video probing and frame-exact decoding (torchcodec, PyAV fallback); importing needs neither."""

from sf2t.video.decode import VideoError, VideoInfo, available_decoders, decode_frames, probe

__all__ = ["VideoError", "VideoInfo", "available_decoders", "decode_frames", "probe"]
