"""Localization videos whose target image cannot fit the model's context, left out of that task at setup.

In the LLaVA families localization's target goes through anyres tiles: its tokens follow its side, a fraction
(``localization.side_min``..``side_max``) of the video's short side, so what fits depends on each video's size.
The pool knows every video's size once it is read (probed or from an ``sf2t index`` manifest):
:func:`leave_out_large_targets` measures, per video, localization's largest sample (the most frames the video
shows, the longest question and answer) with the video's smallest target (:meth:`TargetBudget.smallest_over`). A
video that cannot fit even so is left out of localization only (recorded in ``pool.skipped``, kind ``too_large``;
the other tasks, and other videos' targets, still use it), all said in one warning; a pool none of whose videos fits
is refused. The videos kept draw their target only among the sizes that fit (``SampleFactory._try_video``), so no
sample stops the run when it is made.
"""

from __future__ import annotations

import warnings

from sf2t._plural import counted, none_of

__all__ = ["leave_out_large_targets"]


def leave_out_large_targets(factory, what: str = "videos") -> None:
    """Leave out of each sized-target task of ``factory`` (localization, LLaVA, a context to fit) the videos of its
    pool none of whose targets can fit (see the module docstring); ``what``: the setting that named the videos, for
    the messages. A ValueError when no video the task may draw is left."""
    from sf2t.train.data import Skip

    pool = factory.pool
    for name, t in factory.tasks.items():
        budget = factory.target_budget(t)
        if budget is None:
            continue
        allowed = factory.task_videos.get(name)
        infos = [i for i in pool.usable(name) if allowed is None or i.path.startswith(allowed)]
        over = []
        for info in infos:
            size = factory.store.frame_size(info)
            got = budget.smallest_over(size, info.num_frames)
            if got:
                over.append((info, size, got))
        if not over:
            continue
        named = "; ".join(_said(budget, *o) for o in over[:3])
        more = f"; and {len(over) - 3} more (listed with the skipped videos)" if len(over) > 3 else ""
        cfg = budget.cfg
        fix = (
            f"lower {name}.side_min / side_max ({cfg.side_min:.3g} / {cfg.side_max:.3g} of the short side), use "
            "videos with a shorter short side or a processor with smaller image_grid_pinpoints, leave the image room "
            f"with fewer frame tokens ({name}.count_max or token_keep_ratio)"
        )
        if len(over) == len(infos):
            drawn = f"in {what!r} it may draw"  # "the only video in 'videos' it may draw cannot give" for one
            none = none_of(len(infos), f"video {drawn}", "can give", "cannot give", nouns=f"videos {drawn}")
            raise ValueError(
                f"{name}: {none} a target image "
                f"that fits the model's context, even the smallest ({cfg.side_min:.3g} of the video's short side) "
                f"with the longest question (e.g. {named}{more}); {fix}, or leave {name} out of the task mix"
            )
        gone = pool.excluded.setdefault(name, set())
        for info, size, got in over:  # (appended: pool.drop's look for an earlier skip would be quadratic here)
            side = budget.smallest_side(size)
            why = (
                f"{name}: its smallest target image ({side} px, {budget.image_tokens(side)} image tokens; short side "
                f"{min(size)} px) cannot fit the model's context: {'; '.join(got)}"
            )
            gone.add(info.path)
            pool.skipped.append(Skip(info.path, "too_large", why, name))
        warnings.warn(
            f"{name}: left out {len(over)} of {counted(len(infos), 'video')} in {what!r} whose smallest target image "
            f"cannot fit the model's context ({named}{more}); {name} draws from the other {len(infos) - len(over)}, "
            f"the other tasks still use them all. To keep them: {fix}",
            stacklevel=2,
        )


def _said(budget, info, size, got: list[str]) -> str:
    """One left-out video in the messages: its short side, its smallest target and what that sample exceeds."""
    side = budget.smallest_side(size)
    frames = min(budget.cfg.count_max, info.num_frames)
    return (
        f"{info.path}: short side {min(size)} px, smallest target {side} px = {budget.image_tokens(side)} image "
        f"tokens, with {frames} frames: {'; '.join(got)}"
    )
