"""dl_theory.hitting_times.hitting_time by hand: falling and rising curves, censoring, shapes."""

import numpy as np
import pytest

from dl_theory.hitting_times import hitting_time


def test_first_index_at_or_below_the_level():
    assert int(hitting_time([4.0, 2.0, 1.0, 0.5], 1.0)) == 2  # equal to the level counts
    assert int(hitting_time([0.5, 2.0], 1.0)) == 0


def test_a_curve_that_never_crosses_is_censored_at_its_length():
    assert int(hitting_time([4.0, 2.0, 1.5], 1.0)) == 3
    assert int(hitting_time([0.1, 0.2], 0.5, approach="above")) == 2


def test_nan_never_reaches_the_level():
    assert int(hitting_time([np.nan, np.nan, 0.5], 1.0)) == 2
    assert int(hitting_time([np.nan, np.nan], 1.0)) == 2


def test_rising_curves_per_row_of_a_grid():
    accuracy_LxSxR = np.array([[[0.1, 0.5, 0.6], [0.1, 0.2, 0.3]],
                               [[0.6, 0.7, 0.8], [0.4, 0.5, 0.5]]])
    np.testing.assert_array_equal(hitting_time(accuracy_LxSxR, 0.5, approach="above"),
                                  [[1, 3], [0, 1]])


def test_falling_curves_per_row():
    errors = np.array([[0.5, 0.3, 0.1], [0.9, 0.8, 0.7]])
    np.testing.assert_array_equal(hitting_time(errors, 0.3), [1, 3])


@pytest.mark.parametrize("kwargs, message", [({"approach": "up"}, "approach='up'"),
                                             ({}, "need at least one axis")])
def test_bad_input_is_refused(kwargs, message):
    curve = [1.0, 0.0] if kwargs else 1.0
    with pytest.raises(ValueError, match=message):
        hitting_time(curve, 0.5, **kwargs)
