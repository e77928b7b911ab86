"""The argument parser of the ``sf2t`` commands: a mistyped option is named, with the one most likely meant, before
anything else is said. Plain argparse said only "the following arguments are required: --out" for ``--ouput x``, and
nothing about the option typed."""

from __future__ import annotations

import argparse
import sys

from sf2t._names import did_you_mean


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose parse first refuses an option it does not know (``--ouput``, ``--verfy``):
    ``sf2t index: error: unrecognized option '--ouput'; did you mean '--out'?``. Not for a parser whose unknown
    options are meant for someone else (``sf2t train``'s ``--key value`` overrides use ``parse_known_args``)."""

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        if not any(isinstance(a, argparse._SubParsersAction) for a in self._actions):  # a subcommand checks its own
            self._check_options(args)
        return super().parse_known_args(args, namespace)

    def _check_options(self, args: list[str]) -> None:
        known = list(self._option_string_actions)
        for tok in args:
            if tok == "--":  # what follows is positional
                return
            if len(tok) < 2 or tok[0] not in self.prefix_chars or " " in tok:
                continue
            if self._negative_number_matcher.match(tok) and not self._has_negative_number_optionals:
                continue  # a value: --workers -1 (its own check names it)
            name = tok.split("=", 1)[0]
            if name in self._option_string_actions or (not tok.startswith("--") and tok[:2] in known):
                continue  # --out, --out=F, -oF
            if name.startswith("--") and any(o.startswith(name) for o in known):
                continue  # an abbreviation, as argparse takes them (it says itself when one is ambiguous)
            hint = did_you_mean(name, [o for o in known if o.startswith("--")]).strip()
            self.error(f"unrecognized option {name!r}" + (f"; {hint}" if hint else "") + " (--help lists the options)")


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number >= 1, or the error naming the option (``argument --num: must be a positive
    whole number, got 0``), where the function behind it named its Python parameter (``num``, ``frame_repeat``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return value
