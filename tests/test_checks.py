"""sf2t._checks: the one home of the argument checks (ints, pairs, reals, bools) the package's functions share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sf2t._checks import check_bool, check_real, is_real


@pytest.mark.parametrize("v", [0, 2, 0.5, np.int64(3), np.float32(1.5)])
def test_check_real_takes_numbers_as_floats(v):
    got = check_real("tau", v)
    assert type(got) is float and got == float(v)


@pytest.mark.parametrize(
    "v, words",
    [
        (True, "tau must be a finite number >= 0, got bool True"),
        (np.True_, "tau must be a finite number >= 0, got bool"),
        ("1.0", "tau must be a finite number >= 0, got str '1.0'"),
        (math.nan, "tau must be a finite number >= 0, got float nan"),
        (math.inf, "tau must be a finite number >= 0, got float inf"),
        (-0.5, "tau must be a finite number >= 0, got float -0.5"),
    ],
)
def test_check_real_refuses_by_name(v, words):
    with pytest.raises(ValueError, match="^" + words):
        check_real("tau", v)


def test_check_real_bounds_and_is_real():
    assert check_real("p", 1, 0.0, 1.0) == 1.0
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\], got float 1.5"):
        check_real("p", 1.5, 0.0, 1.0)
    assert [is_real(v) for v in (1, 1.0, np.int8(1), np.float16(1), True, np.False_, "1", None)] == [True] * 4 + [
        False
    ] * 4


def test_check_bool():
    assert check_bool("guard", np.True_) is True and check_bool("guard", False) is False
    for v in ("no", 0, 1.0, None):
        with pytest.raises(ValueError, match="guard must be True or False, got"):
            check_bool("guard", v)
