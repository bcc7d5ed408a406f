"""Integration data of Lample & Charton 2020 ("Deep learning for symbolic mathematics",
Section 3): (problem, solution) pairs in prefix notation, generated with sympy, and the check
of a candidate integral.

- BWD ("backward"): sample a random F (uniform over trees with n operators, `symbolic_trees`),
  simplify it and drop its additive constant, differentiate: the pair is (F', F). Problems are
  often long, solutions short.
- FWD ("forward"): sample a random f, simplify, integrate with sympy: the pair is (f, integral
  of f), kept only when sympy returns a closed form the prefix language can write.
Every sympy call runs under a per-expression CPU-time limit (`time_limit`); a candidate that
hits it is dropped and counted in the dataset's `stats`, so generation never hangs. Candidate i of
a dataset is drawn from the generator seeded by (seed, i), so a timeout drops that candidate
without shifting the others. On one machine the data do not change between runs, with the
load or with PYTHONHASHSEED (the limit counts CPU time, not wall time); a much slower or
faster CPU can move a few candidates across the limit. The result is stored in an on-disk
cache keyed by the whole configuration (`cached_pairs`), written atomically; the datasets of
the experiment's quick preset ship with the package (`SHIPPED_DIR`, regenerated exactly by
`generate_pairs` and checked by a test), so that every machine reads the same data.

A candidate answer is correct when its derivative minus the integrand simplifies to 0
(`check_integral`), as in the paper (Section 4.1): any antiderivative, in any form, counts.
"""

import contextlib
import dataclasses
import gzip
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import sympy

from dl_theory.data.symbolic_prefix import (
    GRAMMAR_BINARY,
    GRAMMAR_UNARY,
    PrefixError,
    UnencodableError,
    X,
    to_prefix,
    to_sympy,
    tree_to_sympy,
)
from dl_theory.data.symbolic_trees import Grammar, check_grammar, sample_tree

METHODS = ("bwd", "fwd")
CACHE_FORMAT = 1  # bump when a change to the generator changes its output
SHIPPED_DIR = Path(__file__).parent / "symbolic_cache"
STAT_KEYS = ("attempts", "accepted", "timeouts", "no_x", "invalid", "too_long", "duplicates")


class SympyTimeout(Exception):
    """A sympy call ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raises SympyTimeout in the body after `seconds` of this process's CPU time (SIGPROF
    interval timer). CPU time rather than wall time, so that which expressions time out does
    not depend on how many other jobs share the machine. Main thread only (where Python
    delivers signals); a long call inside C code is interrupted when it returns to Python.

    The timer re-fires every max(seconds / 4, 10 ms) until the body ends: Python swallows an
    exception raised while it runs a finaliser or a garbage-collector callback (JAX registers
    one), and the next firing must then still stop the body. Python hands such a swallowed
    exception to `sys.unraisablehook`; in the body a swallowed SympyTimeout is dropped there
    (it is this limit at work, not an error), and any other is passed on to the hook in place
    before, with the timer held off so that a firing cannot break that hook in turn.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("time_limit needs the main thread (it uses SIGPROF)")
    armed = [True]
    previous_hook = sys.unraisablehook

    def _raise(signum, frame):
        if armed[0]:
            raise SympyTimeout(f"sympy call exceeded {seconds} s of CPU time")

    def _report_unraisable(unraisable):
        if isinstance(unraisable.exc_value, SympyTimeout):
            return
        was_armed, armed[0] = armed[0], False
        try:
            previous_hook(unraisable)
        finally:
            armed[0] = was_armed

    previous = signal.signal(signal.SIGPROF, _raise)
    sys.unraisablehook = _report_unraisable
    signal.setitimer(signal.ITIMER_PROF, seconds, max(seconds / 4, 0.01))
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        sys.unraisablehook = previous_hook


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    """What one dataset is: the tree grammar, operators per tree, the longest prefix kept
    (problem and solution each) and the CPU-time limit of each sympy step, in seconds."""

    grammar: Grammar = Grammar()
    num_ops: int = 5
    max_len: int = 64
    seconds: float = 1.0


def check_generation_config(config: GenerationConfig, key: str = "data") -> None:
    """Raises ValueError naming the full dotted key of the first bad field."""
    check_grammar(config.grammar, f"{key}.grammar", GRAMMAR_UNARY, GRAMMAR_BINARY)
    if config.num_ops < 1:
        raise ValueError(f"{key}.num_ops={config.num_ops}; must be >= 1")
    if config.max_len < 2:
        raise ValueError(f"{key}.max_len={config.max_len}; must be >= 2")
    if not config.seconds > 0:
        raise ValueError(f"{key}.seconds={config.seconds}; must be > 0")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """pairs: (problem tokens, solution tokens); stats: counts of `STAT_KEYS`."""

    pairs: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]
    stats: dict


def _without_additive_constant(expr: sympy.Expr) -> sympy.Expr:
    """expr minus its terms free of x (an antiderivative is defined up to a constant)."""
    if expr.is_Add:
        return sympy.Add(*[term for term in expr.args if term.has(X)])
    return expr


def _writable(expr: sympy.Expr) -> bool:
    return expr.is_finite is not False and not expr.has(sympy.I, sympy.zoo, sympy.nan,
                                                        sympy.oo, sympy.Integral)


def bwd_pair(tree: tuple[str, ...], seconds: float):
    """(F', F) from a sampled tree for F, or a reason string why it is dropped."""
    with time_limit(seconds):
        antiderivative = tree_to_sympy(tree)
        if not antiderivative.has(X):
            return "no_x"
        antiderivative = _without_additive_constant(sympy.simplify(antiderivative))
        if not antiderivative.has(X) or not _writable(antiderivative):
            return "invalid"
        integrand = sympy.simplify(sympy.diff(antiderivative, X))
    if integrand == 0 or not _writable(integrand):
        return "invalid"
    return integrand, antiderivative


def fwd_pair(tree: tuple[str, ...], seconds: float):
    """(f, integral of f) from a sampled tree for f, or a reason string why it is dropped."""
    with time_limit(seconds):
        integrand = tree_to_sympy(tree)
        if not integrand.has(X):
            return "no_x"
        integrand = sympy.simplify(integrand)
        if not integrand.has(X) or not _writable(integrand):
            return "invalid"
        antiderivative = sympy.integrate(integrand, X)
        if not _writable(antiderivative):
            return "invalid"
        antiderivative = _without_additive_constant(sympy.simplify(antiderivative))
    if not _writable(antiderivative):
        return "invalid"
    return integrand, antiderivative


_METHOD_PAIR = {"bwd": bwd_pair, "fwd": fwd_pair}


def generate_pairs(method: str, config: GenerationConfig, seed: int, count: int,
                   max_attempts: int | None = None) -> Dataset:
    """`count` distinct (problem, solution) prefix pairs by `method` ("bwd" or "fwd"); stops
    early (fewer pairs, see stats) after `max_attempts` candidates (default 50 * count)."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}; known: {list(METHODS)}")
    check_generation_config(config)
    stats = dict.fromkeys(STAT_KEYS, 0)
    pairs, seen = [], set()
    max_attempts = 50 * count if max_attempts is None else max_attempts
    while len(pairs) < count and stats["attempts"] < max_attempts:
        rng = np.random.default_rng([seed, stats["attempts"]])
        stats["attempts"] += 1
        tree = sample_tree(rng, config.grammar, config.num_ops)
        try:
            result = _METHOD_PAIR[method](tree, config.seconds)
            if isinstance(result, str):
                stats[result] += 1
                continue
            problem, solution = to_prefix(result[0]), to_prefix(result[1])
        except SympyTimeout:
            stats["timeouts"] += 1
            continue
        except (UnencodableError, ValueError, TypeError, ZeroDivisionError, RecursionError):
            # sympy raises these on degenerate trees (log(0), 1/0, ...).
            stats["invalid"] += 1
            continue
        if max(len(problem), len(solution)) > config.max_len:
            stats["too_long"] += 1
            continue
        if problem in seen:
            stats["duplicates"] += 1
            continue
        seen.add(problem)
        pairs.append((problem, solution))
        stats["accepted"] += 1
    return Dataset(tuple(pairs), stats)


# Where a candidate's derivative is compared with the integrand numerically before sympy
# simplifies their difference: positive, irrational-free points away from 0 and 1 (where
# log and division degenerate), evaluated with 30 significant digits.
SCREEN_POINTS = (sympy.Rational(3, 10), sympy.Rational(17, 10), sympy.Rational(29, 10))
SCREEN_DIGITS = 30
SCREEN_TOLERANCE = 1e-12  # relative to 1 + |integrand|; a true zero evaluates to ~1e-30


def differs_numerically(derivative: sympy.Expr, integrand: sympy.Expr) -> bool:
    """True if at one of `SCREEN_POINTS` both sides evaluate to finite (possibly complex)
    numbers that differ by more than SCREEN_TOLERANCE (1 + |integrand|). A difference that
    simplifies to 0 is 0 wherever both sides are defined, so True proves the candidate wrong;
    False proves nothing (e.g. every point undefined)."""
    for point in SCREEN_POINTS:
        left = sympy.N(derivative.subs(X, point), SCREEN_DIGITS)
        right = sympy.N(integrand.subs(X, point), SCREEN_DIGITS)
        if not (left.is_number and right.is_number and left.is_finite and right.is_finite):
            continue
        gap = abs(complex(left) - complex(right))
        if gap > SCREEN_TOLERANCE * (1.0 + abs(complex(right))):
            return True
    return False


def check_integral(integrand: sympy.Expr, candidate: sympy.Expr, seconds: float = 1.0) -> str:
    """"correct" if d(candidate)/dx - integrand simplifies to 0 within `seconds` of CPU time,
    "timeout" if sympy ran out of time, else "wrong" (also for symbols other than x).
    A candidate whose derivative differs from the integrand numerically
    (`differs_numerically`) is wrong without the costly simplification; the verdict is the
    same, only faster (most wrong answers are rejected in a few milliseconds)."""
    if candidate.free_symbols - {X}:
        return "wrong"
    try:
        with time_limit(seconds):
            derivative = sympy.diff(candidate, X)
            if differs_numerically(derivative, integrand):
                return "wrong"
            difference = sympy.simplify(derivative - integrand)
    except SympyTimeout:
        return "timeout"
    except (ValueError, TypeError, ZeroDivisionError, RecursionError, OverflowError):
        return "wrong"  # sympy fails on some degenerate candidates: not verified correct
    return "correct" if difference == 0 else "wrong"


def is_correct_integral(integrand: sympy.Expr, candidate: sympy.Expr,
                        seconds: float = 1.0) -> bool:
    """True iff `check_integral` says "correct" (a timeout counts as not correct)."""
    return check_integral(integrand, candidate, seconds) == "correct"


def cache_key(method: str, config: GenerationConfig, seed: int, count: int) -> str:
    """Hex digest of everything that determines a dataset (and the cache format)."""
    description = {"method": method, "config": dataclasses.asdict(config), "seed": seed,
                   "count": count, "format": CACHE_FORMAT}
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def cache_file_name(method: str, config: GenerationConfig, seed: int, count: int) -> str:
    """The file a dataset is cached in: "symbolic-<method>-<key prefix>.json.gz"."""
    return f"symbolic-{method}-{cache_key(method, config, seed, count)[:20]}.json.gz"


def _read_dataset(path: Path) -> Dataset:
    with gzip.open(path, "rt") as f:
        stored = json.load(f)
    return Dataset(tuple((tuple(p), tuple(s)) for p, s in stored["pairs"]), stored["stats"])


def cached_pairs(method: str, config: GenerationConfig, seed: int, count: int,
                 cache_dir: str | os.PathLike) -> Dataset:
    """`generate_pairs(method, config, seed, count)`, read from `SHIPPED_DIR` (datasets that
    ship with the package, so that every machine trains on the same data and the quick
    presets skip minutes of sympy) or from `cache_dir` if generated before; else generated
    and written to `cache_dir` atomically (temp file, then rename)."""
    name = cache_file_name(method, config, seed, count)
    cache_dir = Path(cache_dir).expanduser()
    for path in (SHIPPED_DIR / name, cache_dir / name):
        if path.exists():
            return _read_dataset(path)
    print(f"[symbolic] generating {count} {method.upper()} pairs, {config.num_ops} operators "
          f"(not cached; written to {cache_dir})", flush=True)
    start = time.process_time()
    dataset = generate_pairs(method, config, seed, count)
    print(f"[symbolic] {len(dataset.pairs)} pairs in {time.process_time() - start:.0f} CPU-s; "
          f"{dataset.stats}", flush=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=cache_dir, suffix=".tmp", delete=False) as f:
        with gzip.open(f, "wt") as zipped:
            json.dump({"pairs": dataset.pairs, "stats": dataset.stats}, zipped)
    os.replace(f.name, cache_dir / name)
    return dataset


def answer_verdict(integrand: sympy.Expr, answer, seconds: float = 1.0) -> str:
    """"malformed" if `answer` (prefix tokens, or None) is not one prefix expression, else
    `check_integral(integrand, answer)`: "correct", "wrong" or "timeout"."""
    try:
        expr = None if answer is None else to_sympy(answer)
    except PrefixError:
        expr = None
    return "malformed" if expr is None else check_integral(integrand, expr, seconds)


def verify_answers(problems, hypotheses, seconds: float = 1.0) -> tuple[np.ndarray, dict]:
    """Which problems are solved: problems is a list of prefix token sequences (integrands),
    hypotheses a list (one per problem) of candidate token sequences (None = malformed).
    A problem counts as solved if any of its hypotheses is a correct integral (the paper's
    rule for beam search, Section 4.4). Returns (solved [N] bool, counts of the checks:
    correct, wrong, malformed (not one prefix expression), timeout)."""
    counts = dict.fromkeys(("correct", "wrong", "malformed", "timeout"), 0)
    solved = np.zeros(len(problems), bool)
    for i, (problem, candidates) in enumerate(zip(problems, hypotheses)):
        integrand = to_sympy(problem)
        for candidate in candidates:
            verdict = answer_verdict(integrand, candidate, seconds)
            counts[verdict] += 1
            if verdict == "correct":
                solved[i] = True
                break
    return solved, counts
