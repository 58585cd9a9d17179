"""Builtins over lists: mapping, filtering, folding, sorting, grouping, `genericClosure` and the
conversion of lists to sets (`listToAttrs`, `zipAttrsWith`).

Laziness follows Nix 2.8 exactly, because programs depend on it: `map`, `genList`,
`zipAttrsWith` build their elements as thunks and call the function only when an element is
forced; `listToAttrs`, `filter`, `concatLists` and the like pass elements on without forcing
them; `foldl'` forces the accumulator at every step, in a loop. Arguments are forced in the order
Nix forces them, so the first error reported is Nix's; builtins whose order differs from the
argument order take them unforced (`lazy=True`).

`sort` reproduces libstdc++'s `std::stable_sort` (the algorithm Nix uses), so a comparator is
called on the same pairs in the same order as in Nix, and one that is not a strict weak order
gives Nix's result instead of failing.
"""

from __future__ import annotations

from ..apply import call, force_function
from ..errors import EvalError
from ..operators import equal, less_than
from ..values import (Attrs, CStr, Lambda, PrimOp, Thunk, force, show_type, type_error,
                      want_attrs, want_int, want_list, want_string)
from . import builtin

_MISSING = object()  # a default for dict lookups that `null` values cannot be mistaken for


def want_plain_string(v) -> str:
    """Return a string without context as a plain `str` (Nix's `forceStringNoCtx`)."""
    s = want_string(v)
    if type(s) is CStr:
        raise EvalError(f"the string '{s}' is not allowed to refer to a store path "
                        f"(such as '{min(s.ctx)}')")
    return s


def _call1(env):
    # Thunk code for `f x` with env = (f, x): f may be a thunk itself.
    f, x = env
    return call(force(f), x)


def _call2(env):
    # Thunk code for `f x y` with env = (f, x, y).
    f, x, y = env
    return call(call(force(f), x), y)


def _caller(f):
    """Return a Python function calling the forced Nix function `f` on one argument."""
    if type(f) is Lambda:
        fenv = f.env
        body = f.body
        if body is not None:
            return lambda x: body([fenv, x])
        fcall = f.call
        return lambda x: fcall(fenv, x)
    return lambda x: call(f, x)


@builtin("map", 2, lazy=True)
def map_(f, xs):
    """`map f list`: apply `f` to each element of `list`, lazily: `f` is called on an element
    only when that element of the result is needed.

    ```nix
    map (x: x * 2) [ 1 2 3 ]  # [ 2 4 6 ]
    ```"""
    xs = want_list(force(xs))
    return [Thunk(_call1, (f, x)) for x in xs]


@builtin("filter", 2, lazy=True)
def filter_(f, xs):
    """`builtins.filter f list`: return the elements `x` of `list` for which `f x` is true, in
    order.

    ```nix
    builtins.filter (x: x > 1) [ 1 2 3 ]  # [ 2 3 ]
    ```"""
    pred = _caller(force_function(f))
    xs = want_list(force(xs))
    out = []
    for x in xs:
        r = pred(x)
        if r is True:
            out.append(x)
        elif r is not False:
            raise type_error(r, "a Boolean")
    return xs if len(out) == len(xs) else out


@builtin("foldl'", 3, lazy=True)
def foldl_strict(f, acc, xs):
    """`builtins.foldl' op nul list`: reduce `list` from the left with the binary function
    `op`, starting with `nul`: `op (… (op (op nul x0) x1) …) xn`. The accumulator is evaluated
    at each step, so long lists do not build up a chain of thunks.

    ```nix
    builtins.foldl' (acc: x: acc + x) 0 [ 1 2 3 ]  # 6
    ```"""
    f = force_function(f)
    xs = want_list(force(xs))
    if not xs:
        return force(acc)
    if type(f) is Lambda:
        fcall, fenv, fbody = f.call, f.env, f.body
        for x in xs:
            g = fbody([fenv, acc]) if fbody is not None else fcall(fenv, acc)
            if type(g) is Lambda:
                gbody = g.body
                acc = gbody([g.env, x]) if gbody is not None else g.call(g.env, x)
            else:
                acc = call(g, x)
        return acc
    for x in xs:
        acc = call(call(f, acc), x)
    return acc


@builtin("genList", 2, lazy=True)
def gen_list(f, n):
    """`builtins.genList generator length`: return the list `[ (generator 0) … (generator
    (length - 1)) ]`; the elements are computed lazily.

    ```nix
    builtins.genList (i: i * i) 4  # [ 0 1 4 9 ]
    ```"""
    n = want_int(force(n))
    if n < 0:
        raise EvalError(f"cannot create list of size {n}")
    return [Thunk(_call1, (f, i)) for i in range(n)]


@builtin("elemAt", 2, lazy=True)
def elem_at(xs, n):
    """`builtins.elemAt list n`: return the element of `list` at index `n` (from 0); an index
    outside the list is an error.

    ```nix
    builtins.elemAt [ "a" "b" ] 1  # "b"
    ```"""
    n = want_int(force(n))
    xs = want_list(force(xs))
    if n < 0 or n >= len(xs):
        raise EvalError(f"list index {n} is out of bounds")
    return xs[n]


@builtin("head", 1)
def head(xs):
    """`builtins.head list`: return the first element of `list`; an empty list is an error.

    ```nix
    builtins.head [ 1 2 ]  # 1
    ```"""
    if type(xs) is not list:
        raise type_error(xs, "a list")
    if not xs:
        raise EvalError("list index 0 is out of bounds")
    return force(xs[0])


@builtin("tail", 1)
def tail(xs):
    """`builtins.tail list`: return `list` without its first element; an empty list is an
    error.

    ```nix
    builtins.tail [ 1 2 3 ]  # [ 2 3 ]
    ```"""
    if type(xs) is not list:
        raise type_error(xs, "a list")
    if not xs:
        raise EvalError("'tail' called on an empty list")
    return xs[1:]


@builtin("length", 1)
def length(xs):
    """`builtins.length list`: return the number of elements of `list`.

    ```nix
    builtins.length [ 1 2 3 ]  # 3
    ```"""
    if type(xs) is not list:
        raise type_error(xs, "a list")
    return len(xs)


@builtin("elem", 2, lazy=True)
def elem(x, xs):
    """`builtins.elem x list`: return whether `x` is equal (`==`) to an element of `list`.

    ```nix
    builtins.elem 2 [ 1 2 3 ]  # true
    ```"""
    xs = want_list(force(xs))
    if not xs:
        return False
    # As in Nix, an element that is the very same (unevaluated) value as `x` is equal to it
    # without comparing, which matters for functions: `let f = x: x; in elem f [ f ]` is true.
    raw = x
    x = force(x)
    for y in xs:
        if y is raw or equal(x, force(y)):
            return True
    return False


@builtin("concatLists", 1)
def concat_lists(xss):
    """`builtins.concatLists lists`: concatenate a list of lists into one list.

    ```nix
    builtins.concatLists [ [ 1 2 ] [ 3 ] ]  # [ 1 2 3 ]
    ```"""
    if type(xss) is not list:
        raise type_error(xss, "a list")
    out = []
    for xs in xss:
        xs = force(xs)
        if type(xs) is not list:
            raise type_error(xs, "a list")
        out += xs
    return out


@builtin("concatMap", 2, lazy=True)
def concat_map(f, xs):
    """`builtins.concatMap f list`: apply `f` to each element of `list` and concatenate the
    resulting lists (`concatLists (map f list)`).

    ```nix
    builtins.concatMap (x: [ x x ]) [ 1 2 ]  # [ 1 1 2 2 ]
    ```"""
    fn = _caller(force_function(f))
    xs = want_list(force(xs))
    out = []
    for x in xs:
        ys = fn(x)
        if type(ys) is not list:
            raise type_error(ys, "a list")
        out += ys
    return out


@builtin("any", 2, lazy=True)
def any_(f, xs):
    """`builtins.any pred list`: return whether `pred` is true for at least one element of
    `list`, stopping at the first one.

    ```nix
    builtins.any (x: x > 2) [ 1 2 3 ]  # true
    ```"""
    pred = _caller(force_function(f))
    for x in want_list(force(xs)):
        r = pred(x)
        if r is True:
            return True
        if r is not False:
            raise type_error(r, "a Boolean")
    return False


@builtin("all", 2, lazy=True)
def all_(f, xs):
    """`builtins.all pred list`: return whether `pred` is true for every element of `list`,
    stopping at the first one for which it is false.

    ```nix
    builtins.all (x: x > 0) [ 1 2 3 ]  # true
    ```"""
    pred = _caller(force_function(f))
    for x in want_list(force(xs)):
        r = pred(x)
        if r is False:
            return False
        if r is not True:
            raise type_error(r, "a Boolean")
    return True


@builtin("partition", 2, lazy=True)
def partition(f, xs):
    """`builtins.partition pred list`: split `list` into the elements for which `pred` is true
    (`right`) and the others (`wrong`), keeping their order.

    ```nix
    builtins.partition (x: x > 2) [ 5 1 3 2 ]  # { right = [ 5 3 ]; wrong = [ 1 2 ]; }
    ```"""
    pred = _caller(force_function(f))
    xs = want_list(force(xs))
    right, wrong = [], []
    for x in xs:
        x = force(x)
        r = pred(x)
        if r is True:
            right.append(x)
        elif r is False:
            wrong.append(x)
        else:
            raise type_error(r, "a Boolean")
    return Attrs({"right": right, "wrong": wrong})


@builtin("groupBy", 2, lazy=True)
def group_by(f, xs):
    """`builtins.groupBy f list`: group the elements of `list` by the string `f x` each gives;
    return a set mapping each such string to the list of its elements, in order.

    ```nix
    builtins.groupBy (s: builtins.substring 0 1 s) [ "foo" "bar" "baz" ]
    # { b = [ "bar" "baz" ]; f = [ "foo" ]; }
    ```"""
    key = _caller(force_function(f))
    xs = want_list(force(xs))
    groups: dict = {}
    for x in xs:
        name = want_plain_string(key(x))
        group = groups.get(name)
        if group is None:
            groups[name] = [x]
        else:
            group.append(x)
    return Attrs(groups)


# -- sort: libstdc++'s std::stable_sort -------------------------------------------------------

_CHUNK = 7  # libstdc++'s _S_chunk_size


def _insertion_sort(a: list, lo: int, hi: int, less) -> None:
    for i in range(lo + 1, hi):
        v = a[i]
        if less(v, a[lo]):
            a[lo + 1:i + 1] = a[lo:i]
            a[lo] = v
        else:
            j = i - 1
            while j >= lo and less(v, a[j]):
                a[j + 1] = a[j]
                j -= 1
            a[j + 1] = v


def _move_merge(src: list, f1: int, l1: int, f2: int, l2: int, dst: list, d: int, less) -> int:
    while f1 != l1 and f2 != l2:
        if less(src[f2], src[f1]):
            dst[d] = src[f2]
            f2 += 1
        else:
            dst[d] = src[f1]
            f1 += 1
        d += 1
    k = l1 - f1
    dst[d:d + k] = src[f1:l1]
    d += k
    k = l2 - f2
    dst[d:d + k] = src[f2:l2]
    return d + k


def _merge_sort_loop(src: list, lo: int, hi: int, dst: list, d: int, step: int, less) -> None:
    two = 2 * step
    while hi - lo >= two:
        d = _move_merge(src, lo, lo + step, lo + step, lo + two, dst, d, less)
        lo += two
    step = min(hi - lo, step)
    _move_merge(src, lo, lo + step, lo + step, hi, dst, d, less)


def _merge_sort_with_buffer(a: list, lo: int, hi: int, buf: list, less) -> None:
    n = hi - lo
    start = lo
    while hi - start >= _CHUNK:
        _insertion_sort(a, start, start + _CHUNK, less)
        start += _CHUNK
    _insertion_sort(a, start, hi, less)
    step = _CHUNK
    while step < n:
        _merge_sort_loop(a, lo, hi, buf, 0, step, less)
        step *= 2
        _merge_sort_loop(buf, 0, n, a, lo, step, less)
        step *= 2


def _merge_adaptive(a: list, mid: int, buf: list, less) -> None:
    # Merge the sorted runs a[:mid] and a[mid:] through the buffer.
    hi = len(a)
    len1, len2 = mid, hi - mid
    if len1 <= len2:
        buf[0:len1] = a[0:mid]
        f1, f2, r = 0, mid, 0
        while f1 != len1 and f2 != hi:
            if less(a[f2], buf[f1]):
                a[r] = a[f2]
                f2 += 1
            else:
                a[r] = buf[f1]
                f1 += 1
            r += 1
        if f1 != len1:
            a[r:r + len1 - f1] = buf[f1:len1]
        return
    if len2 == 0:
        return
    buf[0:len2] = a[mid:hi]
    l1, l2, r = mid - 1, len2 - 1, hi
    while True:
        r -= 1
        if less(buf[l2], a[l1]):
            a[r] = a[l1]
            if l1 == 0:
                a[r - l2 - 1:r] = buf[0:l2 + 1]
                return
            l1 -= 1
        else:
            a[r] = buf[l2]
            if l2 == 0:
                return
            l2 -= 1


def stable_sort(a: list, less) -> None:
    """Sort `a` in place with `less`, calling it exactly as libstdc++'s `std::stable_sort`
    does (with a buffer as large as the list)."""
    n = len(a)
    if n < 2:
        return
    mid = (n + 1) // 2
    buf = [None] * n
    _merge_sort_with_buffer(a, 0, mid, buf, less)
    _merge_sort_with_buffer(a, mid, n, buf, less)
    _merge_adaptive(a, mid, buf, less)


def _all_numbers_or_all_strings(xs: list) -> bool:
    t0 = type(xs[0])
    if t0 is int or t0 is float:
        for x in xs:
            t = type(x)
            if (t is not int and t is not float) or x != x:
                return False
        return True
    if t0 is str:
        for x in xs:
            if type(x) is not str:
                return False
        return True
    return False


@builtin("sort", 2, lazy=True)
def sort(f, xs):
    """`builtins.sort comparator list`: return `list` sorted stably by `comparator`, a function
    of two elements that returns whether the first must come before the second.

    ```nix
    builtins.sort builtins.lessThan [ 483 249 526 147 42 77 ]
    # [ 42 77 147 249 483 526 ]
    ```"""
    f = force_function(f)
    xs = want_list(force(xs))
    if not xs:
        return xs
    items = [force(x) for x in xs]
    if type(f) is PrimOp and f.name == "lessThan":
        if _all_numbers_or_all_strings(items):
            # A strict weak order: the stable result is unique, and Python finds it faster.
            items.sort()
            return items
        less = less_than
    elif type(f) is Lambda:
        fcall, fenv = f.call, f.env

        def less(a, b):
            g = fcall(fenv, a)
            r = g.call(g.env, b) if type(g) is Lambda else call(g, b)
            if type(r) is not bool:
                raise type_error(r, "a Boolean")
            return r
    else:
        def less(a, b):
            r = call(call(f, a), b)
            if type(r) is not bool:
                raise type_error(r, "a Boolean")
            return r
    stable_sort(items, less)
    return items


# -- genericClosure ----------------------------------------------------------------------------

class _KeySet:
    """The set of keys `genericClosure` has seen, ordered by Nix's `<` as Nix's `std::set` is.

    Numbers and plain strings go in a dict (equal keys hash alike); any other key kind keeps a
    sorted list searched with `less_than`, so comparing incomparable keys fails as in Nix."""

    def __init__(self):
        self.kind = None  # "num", "str" or "other", fixed by the first key
        self.seen: dict = {}
        self.first = None
        self.ordered: list = []

    @staticmethod
    def _kind(k):
        t = type(k)
        if t is int or t is float:
            return "num" if k == k else "other"
        if t is str or t is CStr:
            return "str"
        return "other"

    def add(self, k) -> bool:
        """Add the forced key `k`; return whether it was new."""
        kind = self._kind(k)
        if self.kind is None:
            self.kind = kind
            self.first = k
        if kind != "other" and kind == self.kind:
            if k in self.seen:
                return False
            self.seen[k] = True
            return True
        if self.kind != "other":
            raise EvalError(f"cannot compare {show_type(k)} with {show_type(self.first)}")
        keys = self.ordered
        lo, hi = 0, len(keys)
        while lo < hi:
            mid = (lo + hi) // 2
            if less_than(k, keys[mid]):
                hi = mid
            elif less_than(keys[mid], k):
                lo = mid + 1
            else:
                return False
        keys.insert(lo, k)
        return True


@builtin("genericClosure", 1)
def generic_closure(args):
    """`builtins.genericClosure { startSet; operator; }`: return the closure of `startSet`
    under `operator`.

    Every item is a set with a `key` attribute. Starting from `startSet`, each item whose key
    has not been seen yet is added to the result and `operator item` gives further items; the
    keys are compared with `==` and `<`. The result is in the order the items were reached
    (breadth first).

    ```nix
    builtins.genericClosure {
      startSet = [ { key = 5; } ];
      operator = item: [ { key = if item.key / 2 * 2 == item.key then item.key / 2 else 3 * item.key + 1; } ];
    }
    # [ { key = 5; } { key = 16; } { key = 8; } { key = 4; } { key = 2; } { key = 1; } ]
    ```"""
    d = want_attrs(args).d
    start = d.get("startSet", _MISSING)
    if start is _MISSING:
        raise EvalError("attribute 'startSet' missing for call to 'genericClosure'")
    work = list(want_list(force(start)))
    op = d.get("operator", _MISSING)
    if op is _MISSING:
        raise EvalError("attribute 'operator' missing for call to 'genericClosure'")
    op = force(op)
    keys = _KeySet()
    out = []
    i = 0
    while i < len(work):
        e = force(work[i])
        i += 1
        if type(e) is not Attrs:
            raise type_error(e, "a set")
        key = e.d.get("key", _MISSING)
        if key is _MISSING:
            raise EvalError("attribute 'key' required")
        if not keys.add(force(key)):
            continue
        out.append(e)
        more = call(op, e)
        if type(more) is not list:
            raise type_error(more, "a list")
        work += more
        if i > 4096 and i * 2 > len(work):
            del work[:i]
            i = 0
    return out


# -- lists to sets -----------------------------------------------------------------------------

@builtin("listToAttrs", 1)
def list_to_attrs(xs):
    """`builtins.listToAttrs list`: build a set from a list of `{ name; value; }` sets; when a
    name occurs more than once, the first occurrence wins. The values are not evaluated.

    ```nix
    builtins.listToAttrs [ { name = "a"; value = 1; } { name = "b"; value = 2; } ]
    # { a = 1; b = 2; }
    ```"""
    if type(xs) is not list:
        raise type_error(xs, "a list")
    d: dict = {}
    pos: dict = {}
    for item in xs:
        item = force(item)
        if type(item) is not Attrs:
            raise type_error(item, "a set")
        idict = item.d
        name = idict.get("name", _MISSING)
        if name is _MISSING:
            raise EvalError("attribute 'name' missing for call to 'listToAttrs'")
        name = want_plain_string(force(name))
        if name in d:
            continue
        value = idict.get("value", _MISSING)
        if value is _MISSING:
            raise EvalError("attribute 'value' missing for call to 'listToAttrs'")
        d[name] = value
        if item.pos is not None:
            span = item.pos.get("value")
            if span is not None:
                pos[name] = span
    return Attrs(d, pos or None)


@builtin("zipAttrsWith", 2, lazy=True)
def zip_attrs_with(f, xs):
    """`builtins.zipAttrsWith f list`: merge the sets of `list`: for every name `n` that occurs
    in any of them, the result has `n = f n [ values of n, in list order ]`, computed lazily.

    ```nix
    builtins.zipAttrsWith (name: values: values) [ { a = 1; } { a = 2; b = 3; } ]
    # { a = [ 1 2 ]; b = [ 3 ]; }
    ```"""
    f = force_function(f)
    xs = want_list(force(xs))
    groups: dict = {}
    for item in xs:
        item = force(item)
        if type(item) is not Attrs:
            raise type_error(item, "a set")
        for name, value in item.d.items():
            group = groups.get(name)
            if group is None:
                groups[name] = [value]
            else:
                group.append(value)
    return Attrs({name: Thunk(_call2, (f, name, values)) for name, values in groups.items()})
