"""Compilation of resolved ASTs into Python closures.

Each node becomes a closure `code(env)`. `strict(node)` gives code that returns the node's value in
weak head normal form; `lazy(node)` gives code that returns a value *or* a thunk without doing any
work: constants are returned as they are, variables return their slot's content (so a variable
never allocates a thunk), everything else returns a new `Thunk`. Laziness therefore costs one
allocation per delayed expression and nothing per variable reference.

Environments are lists `[parent, slot1, slot2, …]` laid out as lang.resolve describes. Errors get
their position from the innermost node that knows one (`EvalError.at`); calls and attribute
selections add "while evaluating" frames for `--show-trace`.
"""

from __future__ import annotations

from ..lang import ast
from ..lang.resolve import lambda_slots
from .apply import call
from .errors import AssertionFailed, EvalError, InfiniteRecursion, StackOverflow, ThrownError
from .operators import (INT_MAX, INT_MIN, OperandError, add, canon_path, coerce_to_string,
                        concat_lists, div, equal, less_than, mul, sub, update)
from .values import Attrs, Lambda, NixPath, PrimOp, Thunk, make_string, type_error

_MISSING = object()
_MAX_TRACE = 64


def _const(v):
    return lambda env: v


def _walk(level: int):
    """Return a function that goes `level` frames up from an environment."""
    if level == 0:
        return lambda env: env
    if level == 1:
        return lambda env: env[0]
    if level == 2:
        return lambda env: env[0][0]

    def up(env):
        for _ in range(level):
            env = env[0]
        return env
    return up


def _lambda_label(node: ast.Lambda) -> str:
    pos = node.span.location().replace("«string»", "(string)").replace("«stdin»", "(stdin)")
    if node.name:
        return f"'{node.name}' at {pos}"
    return f"anonymous function at {pos}"


class Compiler:
    """Turns resolved AST nodes into closures; `state` is the Evaluator (for coercions that copy
    paths to the store and for `<…>` lookups)."""

    def __init__(self, state):
        self.state = state

    # -- entry points ---------------------------------------------------------------------------

    def strict(self, node: ast.Node):
        return getattr(self, "c_" + type(node).__name__)(node)

    def lazy_binding(self, node: ast.Node, filled: int = 0):
        """Like `lazy`, for a binding evaluated while its own scope is being filled in: a
        variable of that same scope may not be set yet, so it is delayed like any expression,
        unless its slot is below `filled` (set already): then the binding shares that slot's
        value, as Nix's `maybeThunk` does (which decides where Nix reports a cycle)."""
        if type(node) is ast.Var and node.level == 0 and node.index >= filled:
            code = self.strict(node)
            return lambda env: Thunk(code, env)
        return self.lazy(node)

    def lazy(self, node: ast.Node):
        t = type(node)
        if t is ast.Int or t is ast.Float:
            return _const(node.value)
        if t is ast.String and len(node.parts) <= 1 and all(type(p) is str for p in node.parts):
            return _const(node.parts[0] if node.parts else "")
        if t is ast.Path and len(node.parts) == 1 and type(node.parts[0]) is str:
            return _const(NixPath(node.parts[0]))
        if t is ast.Var and node.level is not None:
            value = self.global_value(node)
            if value is not _MISSING:
                return _const(value)
            level, index = node.level, node.index
            if level == 0:
                return lambda env: env[index]
            if level == 1:
                return lambda env: env[0][index]
            up = _walk(level)
            return lambda env: up(env)[index]
        code = self.strict(node)
        return lambda env: Thunk(code, env)

    # -- constants ------------------------------------------------------------------------------

    def c_Int(self, node):
        return _const(node.value)

    c_Float = c_Int

    def c_Uri(self, node):
        return _const(node.value)

    def c_String(self, node: ast.String):
        parts = node.parts
        if all(type(p) is str for p in parts):
            return _const("".join(parts))
        state = self.state
        codes = [p if type(p) is str else (self.strict(p.expr), p.span) for p in parts]

        def code(env):
            ctx: set = set()
            out = []
            for p in codes:
                if type(p) is str:
                    out.append(p)
                    continue
                c, span = p
                v = c(env)
                if type(v) is str:
                    out.append(v)
                else:
                    try:
                        out.append(coerce_to_string(state, v, ctx))
                    except EvalError as e:
                        raise e.at(span)
            return make_string("".join(out), ctx)
        return code

    def c_Path(self, node: ast.Path):
        parts = node.parts
        if len(parts) == 1 and type(parts[0]) is str:
            return _const(NixPath(parts[0]))
        state = self.state
        codes = [p if type(p) is str else (self.strict(p.expr), p.span) for p in parts]

        def code(env):
            ctx: set = set()
            out = []
            for p in codes:
                if type(p) is str:
                    out.append(p)
                    continue
                c, span = p
                try:
                    out.append(coerce_to_string(state, c(env), ctx, copy_to_store=False))
                except EvalError as e:
                    raise e.at(span)
            if ctx:
                raise EvalError("a string that refers to a store path cannot be appended to a "
                                "path", node.span)
            return NixPath(canon_path("".join(out)))
        return code

    def c_SearchPath(self, node: ast.SearchPath):
        find_file = self.strict(node.find_file)
        nix_path = self.lazy(node.nix_path)
        path = node.path
        span = node.span

        def code(env):
            try:
                return call(call(find_file(env), nix_path(env)), path)
            except EvalError as e:
                raise e.at(span)
        return code

    # -- variables ------------------------------------------------------------------------------

    def global_value(self, node):
        """The value of a variable bound in the outermost scope, if it is known now: globals
        (the builtins) never change once evaluation starts, so they are constants."""
        if type(node) is ast.Var and node.is_global:
            v = self.state.base_env[node.index]
            if type(v) is not Thunk:
                return v
        return _MISSING

    def c_Var(self, node: ast.Var):
        span = node.span
        if node.level is None:
            return self._dynamic_var(node)
        value = self.global_value(node)
        if value is not _MISSING:
            return _const(value)
        level, index = node.level, node.index
        if level == 0:
            def code(env):
                v = env[index]
                if type(v) is Thunk:
                    if v.code is None:
                        return v.value
                    try:
                        return v.force()
                    except InfiniteRecursion as e:
                        raise e.at(span)
                return v
        elif level == 1:
            def code(env):
                v = env[0][index]
                if type(v) is Thunk:
                    if v.code is None:
                        return v.value
                    try:
                        return v.force()
                    except InfiniteRecursion as e:
                        raise e.at(span)
                return v
        else:
            up = _walk(level)

            def code(env):
                v = up(env)[index]
                if type(v) is Thunk:
                    try:
                        return v.force()
                    except InfiniteRecursion as e:
                        raise e.at(span)
                return v
        return code

    def _dynamic_var(self, node: ast.Var):
        name, span = node.name, node.span
        ups = [_walk(level) for level in node.with_levels]

        def code(env):
            for up in ups:
                scope = up(env)[1]
                if type(scope) is Thunk:
                    scope = scope.force()
                if type(scope) is not Attrs:
                    raise type_error(scope, "a set").at(span)
                v = scope.d.get(name, _MISSING)
                if v is not _MISSING:
                    if type(v) is Thunk:
                        return v.force()
                    return v
            raise EvalError(f"undefined variable '{name}'", span)
        return code

    # -- attribute sets -------------------------------------------------------------------------

    def _attr_name(self, name):
        """Return a function giving an attribute path element's name from an env (None = skip)."""
        if type(name) is str:
            return None
        code = self.strict(name)
        span = name.span

        def get(env):
            v = code(env)
            if type(v) is str or v is None:
                return v
            if isinstance(v, str):
                return str(v)
            raise type_error(v, "a string").at(span)
        return get

    def c_Select(self, node: ast.Select):
        # `builtins.name`: a constant, looked up once here rather than at every use.
        base = self.global_value(node.expr)
        if (type(base) is Attrs and node.default is None and len(node.path) == 1
                and type(node.path[0]) is str):
            value = base.d.get(node.path[0], _MISSING)
            if value is not _MISSING and type(value) is not Thunk:
                return _const(value)
        expr = self.strict(node.expr)
        names = [(n, self._attr_name(n)) for n in node.path]
        default = self.strict(node.default) if node.default is not None else None
        span = node.span

        if len(names) == 1 and names[0][1] is None and default is None:
            name = names[0][0]

            def select1(env):
                v = expr(env)
                if type(v) is not Attrs:
                    raise type_error(v, "a set").at(span)
                x = v.d.get(name, _MISSING)
                if x is _MISSING:
                    raise _missing_attr(name, v, span)
                if type(x) is Thunk:
                    try:
                        return x.force()
                    except EvalError as e:
                        _trace_attr(e, name, v, span)
                        raise
                return x
            return select1

        def select(env):
            v = expr(env)
            for static, dyn in names:
                name = static if dyn is None else dyn(env)
                if type(v) is not Attrs:
                    if default is not None:
                        return default(env)
                    raise type_error(v, "a set").at(span)
                x = v.d.get(name, _MISSING)
                if x is _MISSING:
                    if default is not None:
                        return default(env)
                    raise _missing_attr(name, v, span)
                if type(x) is Thunk:
                    try:
                        x = x.force()
                    except EvalError as e:
                        _trace_attr(e, name, v, span)
                        raise
                v = x
            return v
        return select

    def c_HasAttr(self, node: ast.HasAttr):
        expr = self.strict(node.expr)
        names = [(n, self._attr_name(n)) for n in node.path]

        def has(env):
            v = expr(env)
            last = len(names) - 1
            for i, (static, dyn) in enumerate(names):
                name = static if dyn is None else dyn(env)
                if type(v) is not Attrs:
                    return False
                x = v.d.get(name, _MISSING)
                if x is _MISSING:
                    return False
                if i < last:
                    v = x.force() if type(x) is Thunk else x
            return True
        return has

    def _bindings(self, attrs: dict[str, ast.Binding], recursive: bool = True,
                  outer_first: bool = False):
        """Return [(name, lazy code, evaluated in the outer env?)] for a binding dict; in a
        recursive scope (`let`, `rec`) a binding may read slots not filled in yet. Slots are
        filled in order (after the inherited ones when `outer_first`: `let`)."""
        out = []
        outer_slots = ({i + 1 for i, b in enumerate(attrs.values())
                        if b.inherited and type(b.value) is ast.Var} if outer_first else ())
        for i, (name, b) in enumerate(attrs.items()):
            outer = b.inherited and type(b.value) is ast.Var
            if recursive and not outer:
                v = b.value
                filled = i + 1
                if type(v) is ast.Var and v.level == 0 and v.index in outer_slots:
                    filled = v.index + 1
                code = self.lazy_binding(v, filled)
            else:
                code = self.lazy(b.value)
            out.append((name, code, outer))
        return out

    def _dynamic(self, node: ast.Attrs):
        """Return code adding the dynamic attributes of `node` to a dict, or None."""
        if not node.dynamic:
            return None
        items = [(self._attr_name(n), self.lazy(v), span) for n, v, span in node.dynamic]

        def add_dynamic(env, d, pos):
            for get_name, value, span in items:
                name = get_name(env)
                if name is None:
                    continue
                if name in d:
                    raise EvalError(f"dynamic attribute '{name}' already defined at "
                                    f"{pos[name].location() if name in pos else '?'}", span)
                d[name] = value(env)
                pos[name] = span
        return add_dynamic

    def c_Attrs(self, node: ast.Attrs):
        bindings = self._bindings(node.attrs, recursive=node.rec)
        pos = {name: b.span for name, b in node.attrs.items()}
        add_dynamic = self._dynamic(node)
        if not node.rec:
            items = [(name, code) for name, code, _ in bindings]
            if add_dynamic is None:
                def attrs(env):
                    return Attrs({name: code(env) for name, code in items}, pos)
            else:
                def attrs(env):
                    d = {name: code(env) for name, code in items}
                    p = dict(pos)
                    add_dynamic(env, d, p)
                    return Attrs(d, p)
            return attrs

        n = len(bindings)
        slots = [(i + 1, code, outer) for i, (_, code, outer) in enumerate(bindings)]
        names = [(name, i + 1) for i, (name, _, _) in enumerate(bindings)]

        def rec_attrs(env):
            inner = [env] + [None] * n
            for slot, code, outer in slots:
                inner[slot] = code(env if outer else inner)
            d = {name: inner[slot] for name, slot in names}
            if add_dynamic is None:
                return Attrs(d, pos)
            p = dict(pos)
            add_dynamic(inner, d, p)
            return Attrs(d, p)
        return rec_attrs

    def c_Let(self, node: ast.Let):
        bindings = self._bindings(node.attrs, outer_first=True)
        n = len(bindings)
        body = self.strict(node.body)
        outer_slots = [(i + 1, code) for i, (_, code, outer) in enumerate(bindings) if outer]
        inner_slots = [(i + 1, code) for i, (_, code, outer) in enumerate(bindings) if not outer]

        def let(env):
            inner = [env] + [None] * n
            for slot, code in outer_slots:
                inner[slot] = code(env)
            for slot, code in inner_slots:
                inner[slot] = code(inner)
            return body(inner)
        return let

    def c_List(self, node: ast.List):
        items = [self.lazy(item) for item in node.items]
        if not items:
            return lambda env: []
        return lambda env: [item(env) for item in items]

    # -- control --------------------------------------------------------------------------------

    def c_With(self, node: ast.With):
        scope = self.lazy(node.env)
        body = self.strict(node.body)
        return lambda env: body([env, scope(env)])

    def c_Assert(self, node: ast.Assert):
        cond = self.strict(node.cond)
        body = self.strict(node.body)
        span = node.cond.span
        text = None

        def assert_(env):
            nonlocal text
            c = cond(env)
            if type(c) is not bool:
                raise type_error(c, "a Boolean").at(span)
            if not c:
                if text is None:
                    from ..lang.printer import show
                    text = show(node.cond)
                raise AssertionFailed(f"assertion '{text}' failed", node.span)
            return body(env)
        return assert_

    def c_If(self, node: ast.If):
        cond = self.strict(node.cond)
        then = self.strict(node.then)
        else_ = self.strict(node.else_)
        span = node.span

        def if_(env):
            c = cond(env)
            if c is True:
                return then(env)
            if c is False:
                return else_(env)
            raise type_error(c, "a Boolean").at(span)
        return if_

    # -- functions ------------------------------------------------------------------------------

    def c_Lambda(self, node: ast.Lambda):
        body = self.strict(node.body)
        if node.formals is None:
            def call_simple(cenv, arg):
                return body([cenv, arg])
            return lambda env: Lambda(node, call_simple, env, body)
        fn = self._formals_call(node, body)
        return lambda env: Lambda(node, fn, env)

    def _formals_call(self, node: ast.Lambda, body):
        slots = lambda_slots(node)
        n = len(slots)
        formals = [(f.name, slots[f.name],
                    None if f.default is None else self.lazy_binding(f.default))
                   for f in node.formals]
        names = frozenset(f.name for f in node.formals)
        ellipsis = node.ellipsis
        param_slot = slots[node.param] if node.param is not None else None

        def call_formals(cenv, arg):
            if type(arg) is Thunk:
                arg = arg.force()
            if type(arg) is not Attrs:
                raise type_error(arg, "a set")
            d = arg.d
            inner = [cenv] + [None] * n
            if param_slot is not None:
                inner[param_slot] = arg
            used = 0
            for name, slot, default in formals:
                v = d.get(name, _MISSING)
                if v is _MISSING:
                    if default is None:
                        raise EvalError(f"{_lambda_label(node)} called without required "
                                        f"argument '{name}'")
                    v = default(inner)
                else:
                    used += 1
                inner[slot] = v
            if not ellipsis and used != len(d):
                for name in sorted(d):
                    if name not in names:
                        raise EvalError(f"{_lambda_label(node)} called with unexpected "
                                        f"argument '{name}'")
            return body(inner)
        return call_formals

    def c_Call(self, node: ast.Call):
        fn = self.strict(node.fn)
        args = [self.lazy(a) for a in node.args]
        span = node.span

        if len(args) == 1:
            arg = args[0]

            def call1(env):
                f = fn(env)
                try:
                    if type(f) is Lambda:
                        body = f.body
                        if body is not None:
                            return body([f.env, arg(env)])
                        return f.call(f.env, arg(env))
                    return call(f, arg(env))
                except EvalError as e:
                    _trace_call(e, f, span)
                    raise
            return call1

        nargs = len(args)
        if nargs == 2:
            return self._call2(fn, args[0], args[1], span)

        def call_(env):
            f = fn(env)
            if type(f) is PrimOp and f.arity == nargs and not f.lazy:
                # A builtin applied to all its arguments at once (`builtins.bitAnd x 1`):
                # no partial applications.
                try:
                    values = []
                    for a in args:
                        v = a(env)
                        if type(v) is Thunk:
                            v = v.value if v.code is None else v.force()
                        values.append(v)
                    return f.fn(*values)
                except EvalError as e:
                    _trace_call(e, f, span)
                    raise
            try:
                for a in args:
                    if type(f) is Lambda:
                        f = f.call(f.env, a(env))
                    else:
                        f = call(f, a(env))
                return f
            except EvalError as e:
                _trace_call(e, f, span)
                raise
        return call_

    @staticmethod
    def _call2(fn, arg0, arg1, span):
        """`f a b`: the commonest multi-argument call (`builtins.bitAnd x 1`, `f acc x`)."""
        def call2(env):
            f = fn(env)
            g = None  # the function the first argument gives, for the trace
            try:
                if type(f) is PrimOp and f.arity == 2 and not f.lazy:
                    a = arg0(env)
                    if type(a) is Thunk:
                        a = a.value if a.code is None else a.force()
                    b = arg1(env)
                    if type(b) is Thunk:
                        b = b.value if b.code is None else b.force()
                    return f.fn(a, b)
                g = f.call(f.env, arg0(env)) if type(f) is Lambda else call(f, arg0(env))
                if type(g) is Lambda:
                    return g.call(g.env, arg1(env))
                return call(g, arg1(env))
            except EvalError as e:
                _trace_call(e, f if g is None else g, span)
                raise
        return call2

    # -- operators ------------------------------------------------------------------------------

    def _int_constant_op(self, op: str, left, k: int, span, lspan=None, rspan=None):
        """Specialise `e OP k` for an integer literal `k` (`n - 1`, `n < 2`, `n == 0`): the
        shapes that dominate recursive functions. Returns None for other operators."""
        state = self.state
        if op not in ("+", "-", "<", ">", "<=", ">=", "==", "!="):
            return None
        fast = {
            "+": lambda a: a + k, "-": lambda a: a - k, "<": lambda a: a < k,
            ">": lambda a: a > k, "<=": lambda a: a <= k, ">=": lambda a: a >= k,
            "==": lambda a: a == k, "!=": lambda a: a != k,
        }[op]
        if op == "-":
            def minus_k(env):
                a = left(env)
                if type(a) is int:
                    c = a - k
                    if INT_MIN <= c <= INT_MAX:
                        return c
                try:
                    return sub(a, k)
                except EvalError as e:
                    raise e.at(span)
            return minus_k
        if op == "+":
            def plus_k(env):
                a = left(env)
                if type(a) is int:
                    c = a + k
                    if INT_MIN <= c <= INT_MAX:
                        return c
                try:
                    return add(state, a, k)
                except OperandError as e:
                    raise e.at(rspan if e.operand else lspan)
                except EvalError as e:
                    raise e.at(span)
            return plus_k
        if op == "<":
            def lt_k(env):
                a = left(env)
                if type(a) is int:
                    return a < k
                try:
                    return less_than(a, k)
                except EvalError as e:
                    raise e.at(span)
            return lt_k
        if op == "==":
            def eq_k(env):
                a = left(env)
                if type(a) is int:
                    return a == k
                return equal(a, k)
            return eq_k
        generic = _OPERATORS[op]

        def cmp_k(env):
            a = left(env)
            if type(a) is int:
                return fast(a)
            try:
                return generic(a, k)
            except EvalError as e:
                raise e.at(span)
        return cmp_k

    def c_Not(self, node: ast.Not):
        expr = self.strict(node.expr)
        span = node.span

        def not_(env):
            v = expr(env)
            if type(v) is not bool:
                raise type_error(v, "a Boolean").at(span)
            return not v
        return not_

    def c_Neg(self, node: ast.Neg):
        expr = self.strict(node.expr)
        span = node.span

        def neg(env):
            try:
                return sub(0, expr(env))
            except EvalError as e:
                raise e.at(span)
        return neg

    def c_BinOp(self, node: ast.BinOp):
        op = node.op
        left = self.strict(node.left)
        right = self.strict(node.right)
        span = node.span
        lspan, rspan = node.left.span, node.right.span
        state = self.state

        if op == "&&":
            def and_(env):
                a = left(env)
                if type(a) is not bool:
                    raise type_error(a, "a Boolean").at(span)
                if not a:
                    return False
                b = right(env)
                if type(b) is not bool:
                    raise type_error(b, "a Boolean").at(span)
                return b
            return and_
        if op == "||":
            def or_(env):
                a = left(env)
                if type(a) is not bool:
                    raise type_error(a, "a Boolean").at(span)
                if a:
                    return True
                b = right(env)
                if type(b) is not bool:
                    raise type_error(b, "a Boolean").at(span)
                return b
            return or_
        if op == "->":
            def impl(env):
                a = left(env)
                if type(a) is not bool:
                    raise type_error(a, "a Boolean").at(span)
                if not a:
                    return True
                b = right(env)
                if type(b) is not bool:
                    raise type_error(b, "a Boolean").at(span)
                return b
            return impl
        if type(node.right) is ast.Int:
            fast = self._int_constant_op(op, left, node.right.value, span, lspan, rspan)
            if fast is not None:
                return fast
        if op == "==":
            def eq(env):
                a = left(env)
                b = right(env)
                if type(a) is type(b) and (type(a) is int or type(a) is str):
                    return a == b
                return equal(a, b)
            return eq
        if op == "!=":
            def ne(env):
                a = left(env)
                b = right(env)
                if type(a) is type(b) and (type(a) is int or type(a) is str):
                    return a != b
                return not equal(a, b)
            return ne
        if op == "+":
            def plus(env):
                a = left(env)
                b = right(env)
                if type(a) is int and type(b) is int:
                    c = a + b
                    if INT_MIN <= c <= INT_MAX:
                        return c
                try:
                    return add(state, a, b)
                except OperandError as e:
                    raise e.at(rspan if e.operand else lspan)
                except EvalError as e:
                    raise e.at(span)
            return plus
        if op == "-":
            def minus(env):
                a = left(env)
                b = right(env)
                if type(a) is int and type(b) is int:
                    c = a - b
                    if INT_MIN <= c <= INT_MAX:
                        return c
                try:
                    return sub(a, b)
                except EvalError as e:
                    raise e.at(span)
            return minus
        if op == "<":
            def lt(env):
                a = left(env)
                b = right(env)
                if type(a) is int and type(b) is int:
                    return a < b
                try:
                    return less_than(a, b)
                except EvalError as e:
                    raise e.at(span)
            return lt
        if op == "*":
            def times(env):
                a = left(env)
                b = right(env)
                if type(a) is int and type(b) is int:
                    c = a * b
                    if INT_MIN <= c <= INT_MAX:
                        return c
                try:
                    return mul(a, b)
                except EvalError as e:
                    raise e.at(span)
            return times
        binary = _OPERATORS[op]

        def binop(env):
            a = left(env)
            b = right(env)
            try:
                return binary(a, b)
            except EvalError as e:
                raise e.at(span)
        return binop


# The general case of each binary operator on two forced values (`+`, the Boolean operators
# and the fast paths are compiled specially).
_OPERATORS = {
    "-": sub, "*": mul, "/": div, "++": concat_lists, "//": update,
    "==": equal, "!=": lambda a, b: not equal(a, b),
    "<": less_than, ">": lambda a, b: less_than(b, a),
    "<=": lambda a, b: not less_than(b, a), ">=": lambda a, b: not less_than(a, b),
}


def _missing_attr(name: str, attrs: Attrs, span) -> EvalError:
    return EvalError(f"attribute '{name}' missing", span)


def _trace_attr(e: EvalError, name: str, attrs: Attrs, select_span) -> None:
    defined = attrs.pos.get(name) if attrs.pos else None
    if e.span is None and type(e) is InfiniteRecursion:
        # The attribute's own thunk is the one being forced: Nix reports where it is defined.
        e.span = defined or select_span
    if len(e.trace) < _MAX_TRACE and not isinstance(e, (StackOverflow, ThrownError)):
        e.add_trace(f"while evaluating the attribute '{name}'", defined)


def _trace_call(e: EvalError, f, span) -> None:
    if e.span is None and not isinstance(e, ThrownError):
        e.span = span
    if len(e.trace) >= _MAX_TRACE or isinstance(e, StackOverflow):
        return
    if type(f) is Lambda:
        name = f.node.name
        e.add_trace(f"while evaluating '{name}'" if name else
                    "while evaluating anonymous function", f.node.span)
        e.add_trace("from call site", span)
