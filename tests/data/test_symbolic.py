"""BWD / FWD integration pairs, the integral check, sympy time limits and the on-disk cache."""

import sys
import time

import pytest
import sympy

import dl_theory.data.symbolic as symbolic
from dl_theory.data.symbolic import (
    STAT_KEYS,
    GenerationConfig,
    SympyTimeout,
    cached_pairs,
    check_generation_config,
    check_integral,
    generate_pairs,
    is_correct_integral,
    time_limit,
)
from dl_theory.data.symbolic_prefix import X, to_sympy
from dl_theory.data.symbolic_trees import Grammar

SMALL = GenerationConfig(grammar=Grammar(leaves=("x", "1", "2", "3")), num_ops=3, max_len=40,
                         seconds=2.0)


@pytest.mark.parametrize("integrand, candidate", [
    (2 * X * sympy.exp(X ** 2), sympy.exp(X ** 2) + 5),               # differs by a constant
    (sympy.sin(2 * X), sympy.sin(X) ** 2),                            # = (1 - cos 2x) / 2
    (sympy.sin(2 * X), -sympy.cos(2 * X) / 2),
    (1 / X, sympy.log(3 * X)),                                        # log 3 + log x
    (2 * X / (X ** 2 + 1), sympy.log(X ** 2 + 1) - sympy.log(7)),
    ((X + 1) ** 2, X ** 3 / 3 + X ** 2 + X),                          # expanded form
])
def test_a_right_answer_written_differently_is_accepted(integrand, candidate):
    assert check_integral(integrand, candidate) == "correct"
    assert is_correct_integral(integrand, candidate)


@pytest.mark.parametrize("integrand, candidate", [
    (sympy.sin(2 * X), sympy.cos(2 * X) / 2),                         # sign error
    (2 * X * sympy.exp(X ** 2), sympy.exp(X ** 2) * X),
    (1 / X, sympy.log(X) ** 2),
    ((X + 1) ** 2, X ** 3 / 3 + X ** 2),                              # a term missing
    (1 / X, sympy.log(X) + sympy.Symbol("y")),                        # a foreign symbol
])
def test_a_wrong_answer_is_rejected(integrand, candidate):
    assert check_integral(integrand, candidate) == "wrong"
    assert not is_correct_integral(integrand, candidate)


def test_a_slow_sympy_call_times_out_and_is_reported():
    with pytest.raises(SympyTimeout):
        with time_limit(0.2):
            while True:  # never ends by itself
                sympy.expand((X + sympy.Integer(time.perf_counter_ns())) ** 30)
    hard = sympy.exp(sympy.sin(X) ** 5 * sympy.log(X + 1)) / (X ** 7 + sympy.cos(X) + 3)
    assert check_integral(hard, sympy.tan(X) * hard, seconds=1e-4) == "timeout"
    assert not is_correct_integral(hard, sympy.tan(X) * hard, seconds=1e-4)


def test_a_swallowed_timeout_fires_again():
    """Python drops an exception raised in a garbage-collector callback; the timer re-fires,
    so the body still stops (simulated by swallowing the first SympyTimeout)."""
    swallowed = 0
    with pytest.raises(SympyTimeout):
        with time_limit(0.05):
            while True:
                try:
                    sympy.expand((X + sympy.Integer(time.perf_counter_ns())) ** 30)
                except SympyTimeout:
                    swallowed += 1
                    if swallowed > 1:
                        raise
    assert swallowed == 2


def _spin(seconds: float) -> None:
    """Burns `seconds` of this process's CPU time in Python code (where signals land)."""
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


class _SlowFinaliser:
    """Runs Python code for `seconds` of CPU time when collected, then raises `error`."""

    def __init__(self, seconds: float, error: Exception | None = None):
        self.seconds, self.error = seconds, error

    def __del__(self):
        _spin(self.seconds)
        if self.error is not None:
            raise self.error


def test_a_timeout_swallowed_in_a_finaliser_is_not_reported_and_the_body_still_stops(
        monkeypatch):
    """The first firing lands in a finaliser, where Python swallows it and reports it to
    sys.unraisablehook; that is the limit at work, so nothing is reported, and the next
    firing stops the body. (CI once failed here: pytest's hook, handed the swallowed
    SympyTimeout, was itself broken by the next firing.)"""
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    with pytest.raises(SympyTimeout):
        with time_limit(0.01):
            _SlowFinaliser(0.1)  # collected at once: the first firing lands in __del__
            _spin(5.0)
    assert reported == []
    assert sys.unraisablehook == reported.append


def test_another_error_in_a_finaliser_reaches_the_hook_with_the_timer_held_off(monkeypatch):
    """An error that is not the limit's goes on to the hook in place before, and a hook
    slower than the limit runs to its end (the timer is held off while it runs)."""
    reported = []

    def slow_hook(unraisable):
        _spin(0.1)
        reported.append(unraisable.exc_value)

    monkeypatch.setattr(sys, "unraisablehook", slow_hook)
    error = ValueError("from a finaliser")
    with pytest.raises(SympyTimeout):
        with time_limit(0.05):
            _SlowFinaliser(0.0, error)
            _spin(5.0)
    assert reported == [error]


def test_no_timeout_after_the_body_ends():
    with time_limit(0.01):
        pass
    total = sum(int(sympy.expand((X + k) ** 20).coeff(X, 3)) for k in range(60))
    assert total > 0  # ran past the old limit on CPU without a stray SympyTimeout


def test_generation_counts_timeouts_instead_of_hanging():
    config = GenerationConfig(grammar=SMALL.grammar, num_ops=6, max_len=64, seconds=1e-4)
    dataset = generate_pairs("bwd", config, seed=0, count=5, max_attempts=12)
    assert dataset.stats["attempts"] == 12
    assert dataset.stats["timeouts"] > 0
    assert sum(dataset.stats[k] for k in STAT_KEYS[1:]) == dataset.stats["attempts"]
    assert len(dataset.pairs) == dataset.stats["accepted"]


@pytest.mark.parametrize("method", ["bwd", "fwd"])
def test_generated_pairs_are_verified_integrals_and_deterministic(method):
    """Every pair (f, F) passes the integral check; same seed, same pairs; other seed,
    other pairs; every drop reason is counted."""
    dataset = generate_pairs(method, SMALL, seed=3, count=8)
    assert len(dataset.pairs) == 8 == dataset.stats["accepted"]
    assert sum(dataset.stats[k] for k in STAT_KEYS[1:]) == dataset.stats["attempts"]
    for problem, solution in dataset.pairs:
        assert max(len(problem), len(solution)) <= SMALL.max_len
        assert check_integral(to_sympy(problem), to_sympy(solution), seconds=5.0) == "correct"
    assert len({p for p, _ in dataset.pairs}) == 8
    assert generate_pairs(method, SMALL, seed=3, count=8).pairs == dataset.pairs
    assert generate_pairs(method, SMALL, seed=4, count=8).pairs != dataset.pairs


def test_bwd_solutions_have_no_additive_constant():
    for _, solution in generate_pairs("bwd", SMALL, seed=5, count=8).pairs:
        expr = to_sympy(solution)
        terms = expr.args if expr.is_Add else (expr,)
        assert all(term.has(X) for term in terms)


def test_cache_round_trip_reads_back_identically(tmp_path, monkeypatch):
    first = cached_pairs("bwd", SMALL, seed=1, count=4, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.endswith(".json.gz")  # no temp file left behind

    def _must_not_run(*args, **kwargs):
        raise AssertionError("generated again instead of reading the cache")

    monkeypatch.setattr(symbolic, "generate_pairs", _must_not_run)
    second = cached_pairs("bwd", SMALL, seed=1, count=4, cache_dir=tmp_path)
    assert second == first
    with pytest.raises(AssertionError, match="generated again"):
        cached_pairs("bwd", SMALL, seed=2, count=4, cache_dir=tmp_path)  # another key


@pytest.mark.parametrize("change, message", [
    (dict(num_ops=0), "data.num_ops=0; must be >= 1"),
    (dict(seconds=0.0), "data.seconds=0.0; must be > 0"),
    (dict(max_len=1), "data.max_len=1"),
    (dict(grammar=Grammar(unary=("erf",))), r"data.grammar.unary has unknown \['erf'\]"),
])
def test_bad_generation_config_names_the_key(change, message):
    config = GenerationConfig(**{**SMALL.__dict__, **change})
    with pytest.raises(ValueError, match=message):
        check_generation_config(config)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method='ode'; known: \\['bwd', 'fwd'\\]"):
        generate_pairs("ode", SMALL, seed=0, count=1)


def test_numeric_screen_rejects_wrong_answers_without_simplifying(monkeypatch):
    """The screen proves wrong answers wrong by evaluation alone (simplify is never called),
    while right answers, including ones whose derivative is undefined at a screen point
    (log(x - 2) at x = 1.7 is complex, still equal), still go through simplify."""
    def _no_simplify(expr):
        raise AssertionError("simplify was called")

    monkeypatch.setattr(symbolic.sympy, "simplify", _no_simplify)
    assert check_integral(sympy.sin(2 * X), sympy.cos(2 * X) / 2) == "wrong"
    assert check_integral(1 / X, sympy.log(X) ** 2) == "wrong"
    with pytest.raises(AssertionError, match="simplify was called"):
        check_integral(1 / (X - 2), sympy.log(X - 2))
    monkeypatch.undo()
    assert check_integral(1 / (X - 2), sympy.log(X - 2)) == "correct"
    assert symbolic.differs_numerically(sympy.cos(X), -sympy.cos(X))
    assert not symbolic.differs_numerically(sympy.cos(X), sympy.sin(X + sympy.pi / 2))
