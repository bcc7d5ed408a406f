"""Prefix (Polish) notation for sympy expressions in one variable x (Lample & Charton 2020,
Section 2.1): the token language the seq2seq model reads and writes.

Encoding of a sympy expression (every sympy expression built from these parts round-trips
exactly: `to_sympy(to_prefix(e)) == e`, structurally):
- x, E, pi: the tokens "x", "E", "pi";
- an integer: "INT+" or "INT-" followed by its decimal digits (as in the paper);
- a rational p/q: "div" then the two integers;
- n-ary Add / Mul: n - 1 right-nested binary "add" / "mul" (read back as one n-ary node);
- b**(1/2): "sqrt" b; other powers: "pow" b e;
- the unary functions of `UNARY_FUNCTIONS`.
Anything else (floats, I, zoo, nan, Integral, special functions, ...) raises
`UnencodableError`. `to_sympy` also reads "sub", "div" and the grammar's own leaves and
operators (`GRAMMAR_OPERATORS`), so a sampled tree of `symbolic_trees` converts directly.
"""

import sympy

X = sympy.Symbol("x")

UNARY_FUNCTIONS = {
    "exp": sympy.exp, "log": sympy.log, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan,
    "asin": sympy.asin, "acos": sympy.acos, "atan": sympy.atan, "sinh": sympy.sinh,
    "cosh": sympy.cosh, "tanh": sympy.tanh, "asinh": sympy.asinh, "acosh": sympy.acosh,
    "atanh": sympy.atanh,
}
_FUNCTION_TOKEN = {f: token for token, f in UNARY_FUNCTIONS.items()}

# Unary and binary operators a `Grammar` may use, with their meaning.
GRAMMAR_UNARY = {**UNARY_FUNCTIONS, "sqrt": sympy.sqrt, "pow2": lambda a: a ** 2,
                 "pow3": lambda a: a ** 3, "inv": lambda a: 1 / a, "neg": lambda a: -a}
GRAMMAR_BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
                  "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
                  "pow": lambda a, b: a ** b}
GRAMMAR_OPERATORS = {**GRAMMAR_UNARY, **GRAMMAR_BINARY}

INTEGER_SIGNS = ("INT+", "INT-")
DIGITS = tuple("0123456789")
CONSTANTS = {"x": X, "E": sympy.E, "pi": sympy.pi}
# Every token `to_prefix` can emit: the model's output vocabulary.
VOCABULARY = (*CONSTANTS, *INTEGER_SIGNS, *DIGITS, "add", "mul", "pow", "div", "sqrt",
              *UNARY_FUNCTIONS)


class UnencodableError(ValueError):
    """The expression has a part the prefix language cannot write (I, zoo, Integral, ...)."""


class PrefixError(ValueError):
    """A token sequence is not one well-formed prefix expression."""


def _integer_tokens(value: int) -> list[str]:
    return ["INT+" if value >= 0 else "INT-", *str(abs(value))]


def to_prefix(expr: sympy.Expr) -> tuple[str, ...]:
    """The prefix tokens of `expr` (see the module docstring); raises UnencodableError."""
    tokens: list[str] = []
    _write(sympy.sympify(expr), tokens)
    return tuple(tokens)


def _write(expr, tokens: list[str]) -> None:
    if expr == X:
        tokens.append("x")
    elif expr is sympy.E or expr is sympy.pi:
        tokens.append(str(expr))
    elif expr.is_Integer:
        tokens.extend(_integer_tokens(int(expr)))
    elif expr.is_Rational:
        tokens.append("div")
        tokens.extend(_integer_tokens(int(expr.p)))
        tokens.extend(_integer_tokens(int(expr.q)))
    elif expr.is_Add or expr.is_Mul:
        name = "add" if expr.is_Add else "mul"
        *init, last = expr.args
        for arg in init:  # right-nested: add a1 add a2 ... add a_{n-1} a_n
            tokens.append(name)
            _write(arg, tokens)
        _write(last, tokens)
    elif expr.is_Pow:
        base, exponent = expr.args
        if exponent == sympy.S.Half:
            tokens.append("sqrt")
            _write(base, tokens)
        else:
            tokens.append("pow")
            _write(base, tokens)
            _write(exponent, tokens)
    elif type(expr) in _FUNCTION_TOKEN:
        tokens.append(_FUNCTION_TOKEN[type(expr)])
        _write(expr.args[0], tokens)
    else:
        raise UnencodableError(f"cannot write {expr!r} ({type(expr).__name__}) in prefix")


def _exact_div(a, b):
    """a / b as written: a canonical fraction p/q of integers is a sympy Rational."""
    if a.is_Integer and b.is_Integer and b > 1 and sympy.gcd(a, b) == 1:
        return sympy.Rational(a, b)
    return sympy.Mul(a, sympy.Pow(b, -1, evaluate=False), evaluate=False)


# Unevaluated constructors: sympy's automatic simplification depends on how an expression
# was built, so rebuilding an expression from its args with evaluation can change its form;
# without evaluation to_sympy(to_prefix(e)) is structurally e.
_BINARY_AS_WRITTEN = {
    "pow": lambda a, b: sympy.Pow(a, b, evaluate=False), "div": _exact_div,
    "sub": lambda a, b: sympy.Add(a, sympy.Mul(-1, b, evaluate=False), evaluate=False)}
_UNARY_AS_WRITTEN = {
    **{token: (lambda f: lambda a: f(a, evaluate=False))(f)
       for token, f in UNARY_FUNCTIONS.items()},
    "sqrt": lambda a: sympy.Pow(a, sympy.S.Half, evaluate=False)}


def to_sympy(tokens) -> sympy.Expr:
    """The sympy expression of a prefix token sequence of the data language (`VOCABULARY`,
    plus "sub"); raises PrefixError if it is not exactly one well-formed expression."""
    return _evaluate(_merge_integers(tuple(tokens)), _UNARY_AS_WRITTEN, _BINARY_AS_WRITTEN,
                     flat_chains=True)


def tree_to_sympy(tokens) -> sympy.Expr:
    """The sympy expression of a sampled grammar tree (`symbolic_trees.sample_tree`): leaves
    "x" or integer literals such as "-3", operators of `GRAMMAR_OPERATORS`."""
    items = []
    for token in tokens:
        items.append(sympy.Integer(int(token)) if token.lstrip("-").isdigit() else token)
    return _evaluate(items, GRAMMAR_UNARY, GRAMMAR_BINARY, flat_chains=False)


def _merge_integers(tokens: tuple[str, ...]) -> list:
    """Tokens with each INT+/INT- and its digits replaced by one sympy Integer."""
    items: list = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in INTEGER_SIGNS:
            j = i + 1
            while j < len(tokens) and tokens[j] in DIGITS:
                j += 1
            if j == i + 1:
                raise PrefixError(f"{token} at position {i} has no digits")
            value = int("".join(tokens[i + 1:j]))
            items.append(sympy.Integer(-value if token == "INT-" else value))
            i = j
        elif token in DIGITS:
            raise PrefixError(f"digit {token!r} at position {i} without INT+ / INT-")
        else:
            items.append(token)
            i += 1
    return items


class _Chain:
    """A right-nested run of "add" (or "mul") operands, built with one Add(*args) call when
    used: sympy's binary a * (b * c) may distribute a number over a sum, while the encoded
    expression was the flat Mul(a, b, c)."""

    def __init__(self, name: str, args: list):
        self.name, self.args = name, args

    def build(self) -> sympy.Expr:
        return (sympy.Add if self.name == "add" else sympy.Mul)(*self.args, evaluate=False)


def _built(item):
    return item.build() if isinstance(item, _Chain) else item


def _evaluate(items: list, unary: dict, binary: dict, flat_chains: bool) -> sympy.Expr:
    """Evaluates prefix items (operator names, constant names, sympy Integers) right to left
    with a stack, so long model outputs need no recursion. With `flat_chains`, nested
    add / mul runs become one n-ary Add / Mul (the inverse of `to_prefix`)."""
    stack: list = []
    for position in range(len(items) - 1, -1, -1):
        item = items[position]
        if isinstance(item, sympy.Integer):
            stack.append(item)
        elif item in CONSTANTS:
            stack.append(CONSTANTS[item])
        elif item in unary or item in binary or (flat_chains and item in ("add", "mul")):
            arity = 1 if item in unary else 2
            if len(stack) < arity:
                raise PrefixError(f"{item!r} at item {position} lacks {arity - len(stack)}"
                                  " operand(s)")
            operands = [stack.pop() for _ in range(arity)]
            if flat_chains and item in ("add", "mul"):
                left, right = _built(operands[0]), operands[1]
                tail = right.args if isinstance(right, _Chain) and right.name == item else [
                    _built(right)]
                stack.append(_Chain(item, [left, *tail]))
                continue
            function = unary[item] if arity == 1 else binary[item]
            stack.append(function(*[_built(o) for o in operands]))
        else:
            raise PrefixError(f"unknown token {item!r} at item {position}")
    if len(stack) != 1:
        raise PrefixError(f"{len(stack)} expressions where one was expected")
    return _built(stack[0])
