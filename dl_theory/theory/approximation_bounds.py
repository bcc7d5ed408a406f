"""Closed-form lower bounds on how well piecewise-linear functions with few pieces approximate.

A ReLU network of one input is continuous and piecewise linear (PL); `dl_theory.theory.regions`
counts its pieces. The bounds here turn a piece count t into an approximation error that no
function with t pieces can beat, so a measured error can be checked against them.

- `sawtooth_l1_lower_bound`: the k-fold tent map (2**k pieces) is far in L1 from every function
  with few pieces (the triangle-counting argument of Telgarsky 2016, "Benefits of depth in
  neural networks", Sec. 3, proof of Thm 1.1; constants re-derived in the docstring).
- `alternating_points_error_lower_bound`: the classification form of the same separation
  (Telgarsky 2015, "Representation benefits of deep feedforward networks", Thm 1.1: on 2**k
  points with alternating labels, few pieces force a large error; constants re-derived).
- `square_pl_sup_error`: the best sup-norm error of a continuous PL function with t pieces on
  x**2 over [0, 1] is exactly 1 / (8 t**2) (the 1-D strongly convex case behind Liang & Srikant
  2017, "Why deep neural networks for function approximation?", and the shallow side of
  Yarotsky 2017's comparison).
- `shallow_max_pieces`: a one-hidden-layer ReLU net with m units has at most m + 1 pieces on a
  line (each unit adds one kink).
"""

from __future__ import annotations


def _check_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}={value!r}; must be an integer >= {minimum}")


def shallow_max_pieces(width: int) -> int:
    """m + 1: the most affine pieces a one-hidden-layer ReLU net of width m has on a line.

    x -> a + sum_i c_i relu(w_i x + b_i) restricted to a line is affine except at the m
    points -b_i / w_i, so it has at most m + 1 pieces (Telgarsky's (2m)**L is looser at L = 1).
    """
    _check_positive_int("width", width)
    return width + 1


def sawtooth_l1_lower_bound(num_pieces: int, k: int) -> float:
    """max(0, 1/8 - (t + 1) / 2**(k+2)): L1([0, 1]) distance from the k-fold tent map of every
    continuous function with at most t = num_pieces affine pieces.

    Derivation (the counting of Telgarsky 2016, proof of Thm 1.1, with our constants). The tent
    map f_k crosses the line y = 1/2 at the 2**k points (j + 1/2) / 2**k, which cut [0, 1] into
    2**k - 1 inner intervals, on each of which f_k - 1/2 forms a triangle of base 2**-k, height
    1/2 and area A = 2**-k / 4, alternately above and below the line, plus two end intervals of
    area A / 2. A continuous g with t affine pieces changes the sign of g - 1/2 at most s <= t
    times (at most once per piece). Removing the <= s intervals that contain a sign change
    leaves <= s + 1 runs of consecutive intervals on which g - 1/2 keeps one sign; in a run of
    r intervals at least floor(r/2) >= (r - 1)/2 triangles lie on the other side of the line,
    and each costs g its full area (|f_k - g| >= |f_k - 1/2| there). Summing, at least
    (2**k + 1 - s - (s + 1)) / 2 = 2**(k-1) - s triangles are missed, of which at most two are
    half-size end triangles: the L1 error is >= (2**(k-1) - s - 1) A = 1/8 - (s + 1) / 2**(k+2).
    Telgarsky's Thm 1.1 states the resulting separation with the constant 1/64 for his wider
    class of semi-algebraic networks; the constant here is re-derived for PL functions.
    """
    _check_positive_int("num_pieces", num_pieces)
    _check_positive_int("k", k)
    return max(0.0, 0.125 - (num_pieces + 1) / 2.0 ** (k + 2))


def alternating_points_error_lower_bound(num_pieces: int, k: int) -> float:
    """max(0, (2**k - t - 1) / 2**(k+1)): the fraction of the 2**k points x_i = i / 2**k with
    labels y_i = i mod 2 that the classifier 1[g(x) >= 1/2] gets wrong, for every continuous g
    with at most t = num_pieces affine pieces.

    Derivation. Along [0, 1] the classifier changes value only where g crosses 1/2, at most
    once per affine piece (g is continuous, so not at the joints): at most t changes, hence at
    most t + 1 runs of consecutive points with one predicted label. A run of r alternating
    points gets at least floor(r/2) >= (r - 1)/2 of them wrong; summed over the runs, at least
    (2**k - t - 1)/2 of the 2**k points. The k-fold tent map takes the value y_i at x_i, so
    the depth-k construction has error 0. Telgarsky (2015, Thm 1.1) states error >= 1/6 for
    nets with l layers of m <= 2**((k - 3)/l - 1) nodes (via t <= (2m)**l); for one hidden
    layer (t <= m + 1) the bound here is sharper.
    """
    _check_positive_int("num_pieces", num_pieces)
    _check_positive_int("k", k)
    return max(0.0, (2.0**k - num_pieces - 1) / 2.0 ** (k + 1))


def square_pl_sup_error(num_pieces: int) -> float:
    """1 / (8 t**2): the least sup-norm error on [0, 1] of a continuous PL function with t
    pieces approximating x**2.

    Lower bound: some piece covers an interval of length h >= 1/t, and the best affine
    approximation of x**2 on an interval of length h has sup error h**2 / 8 (the error of the
    chord is the parabola h**2/4 - (x - mid)**2 in [0, h**2/4]; shifting it by h**2/8
    equioscillates at three points, which Chebyshev's theorem shows optimal). Attained: the
    interpolant at the knots j/t (Yarotsky's f_m for t = 2**m, error in [0, 1/(4 t**2)])
    shifted down by 1/(8 t**2), which is continuous. For f with f'' >= mu the same argument
    gives mu / (16 t**2) (Liang & Srikant 2017's strongly convex lower bound in one dimension).
    """
    _check_positive_int("num_pieces", num_pieces)
    return 1.0 / (8.0 * num_pieces**2)
