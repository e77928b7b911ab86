"""sf2t: self-supervised fragment fine-tuning (SF²T) for video LLMs.

Importing sf2t never fails because the compiled extension is missing or stale; the error is kept in
``sf2t._ext.load_error()`` and shown, with the fix, when a compiled-only path is asked for.
"""

from sf2t._version import __version__

__all__ = ["__version__"]
