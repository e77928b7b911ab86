"""Training: config (``TrainConfig``), data (video -> task -> fragment_pack -> tokens), loop, evaluation.

``sf2t.train.loop`` and ``sf2t.train.evaluate`` import transformers/peft lazily; see ``NOTES.md`` for what made
the disorder task learn on a tiny model.
"""

from sf2t.train.config import TrainConfig, apply_overrides, load_config

__all__ = ["TrainConfig", "apply_overrides", "load_config"]
