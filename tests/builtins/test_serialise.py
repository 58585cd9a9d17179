"""Serialisation builtins (`toJSON`, `fromJSON`, `fromTOML`, `toXML`) and the `--json` / `--xml`
printers, against outputs taken from Nix 2.8.

Each case is an expression with the expected output written as a literal: the value as
`nix-instantiate --eval --strict` prints it, the `--json` or `--xml` document, or the first line of
the error. `test_dtx` evaluates the expression in-process; `test_nix` (when `nix-instantiate` is on
PATH) checks the same literal against real Nix, running many expressions per process.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import shutil
import subprocess

import pytest

from dtx.runtime.builtins.control import deep_force
from dtx.runtime.builtins.json import from_json, to_json
from dtx.runtime.builtins.xml import to_xml
from dtx.runtime.errors import EvalError
from dtx.runtime.eval import Evaluator
from dtx.runtime.printer import print_value
from dtx.runtime.values import Attrs, NixPath

BASE_DIR = "/tmp"


class Prefix(str):
    """An expected output of which only the beginning must match (where dtx's wording differs)."""


def matches(expected: str, actual: str) -> bool:
    if isinstance(expected, Prefix):
        return actual.startswith(expected)
    return actual == expected


# -- cases: (expression, expected `--eval --strict` output or first error line) -----------------

EVAL_CASES = [
    # toJSON: scalars, sorting, escaping, floats
    (r'builtins.toJSON { b = 1; a = [true false null]; "c d" = "x"; }',
     r'"{\"a\":[true,false,null],\"b\":1,\"c d\":\"x\"}"'),
    (r'builtins.toJSON { "\n" = 1; "é" = 2; "Z" = 3; "a" = 4; "" = 5; }',
     r'"{\"\":5,\"\\n\":1,\"Z\":3,\"a\":4,\"é\":2}"'),
    (r'builtins.toJSON []', r'"[]"'),
    (r'builtins.toJSON {}', r'"{}"'),
    (r'builtins.toJSON [ [] {} [ [ 1 ] ] ]', r'"[[],{},[[1]]]"'),
    (r'builtins.toJSON "a\"b\\c\n\t\r/ é ☃ ${"$"}{x}"', r'"\"a\\\"b\\\\c\\n\\t\\r/ é ☃ \${x}\""'),
    (r'builtins.toJSON (builtins.fromJSON "\"\\u0001\\u001f\\b\\f\\u00e9\\ud83d\\ude00\"")',
     r'"\"\\u0001\\u001f\\u0008\\u000cé😀\""'),
    (r'builtins.toJSON [ 9223372036854775807 (-9223372036854775807 - 1) 0 (-1) ]',
     r'"[9223372036854775807,-9223372036854775808,0,-1]"'),
    (r'builtins.toJSON [0.1 1.5 1.0e20 0.30000000000000004 1.0 0.00001 123456789.0 1.0e300 '
     r'3.14159265358979 1.0e16 1.0e15 12345678.9 1.0e-7 (1.0 / 3.0) 100.0 1234567.0 '
     r'1.7976931348623157e308 2.5e-5 0.0001 999999.5 9999995.0]',
     r'"[0.1,1.5,1e+20,0.3,1,1e-05,1.23457e+08,1e+300,3.14159,1e+16,1e+15,1.23457e+07,1e-07,'
     r'0.333333,100,1.23457e+06,1.79769e+308,2.5e-05,0.0001,1e+06,1e+07]"'),
    (r'builtins.toJSON [ (1.0e308 * 10) (-(1.0e308 * 10)) ]', r'"[inf,-inf]"'),
    (r'builtins.toJSON ((1.0e308 * 10) - (1.0e308 * 10))', r'"-nan"'),
    (r'builtins.toJSON (builtins.fromJSON "-0.0")', r'"-0"'),
    # toJSON: sets that stand for strings
    (r'builtins.toJSON { __toString = self: "hi"; }', r'"\"hi\""'),
    (r'builtins.toJSON { __toString = self: "a${builtins.toString 1}"; }', r'"\"a1\""'),
    (r'builtins.toJSON { __toString = self: "a"; outPath = "b"; }', r'"\"a\""'),
    (r'builtins.toJSON { __toString = self: /tmp; }', r'"\"/tmp\""'),
    (r'builtins.toJSON { outPath = "/x"; a = 1; }', r'"\"/x\""'),
    (r'builtins.toJSON { type = "derivation"; outPath = "/x"; a = 1; }', r'"\"/x\""'),
    (r'builtins.toJSON { outPath = 1; }', r'"1"'),
    (r'builtins.toJSON { outPath = { a = 1; }; }', r'"{\"a\":1}"'),
    (r'builtins.toJSON [ { outPath = [ { outPath = null; } ]; } ]', r'"[[null]]"'),
    # toJSON: errors
    (r'builtins.toJSON (x: x)', 'error: cannot convert a function to JSON'),
    (r'builtins.toJSON { a = [ ({ x }: x) ]; }', 'error: cannot convert a function to JSON'),
    (r'builtins.toJSON builtins.map', "error: cannot convert the built-in function 'map' to JSON"),
    (r'builtins.toJSON (builtins.map (x: x))',
     "error: cannot convert the partially applied built-in function 'map' to JSON"),
    (r'builtins.toJSON { __toString = self: 1; }', 'error: cannot coerce an integer to a string'),
    (r'builtins.toJSON { __toString = self: [1 2]; }', 'error: cannot coerce a list to a string'),
    (r'builtins.toJSON { b = throw "boom"; a = throw "first"; }', 'error: first'),
    # fromJSON: values
    (r'builtins.fromJSON "[1, 1.0, 1e2, 1E2, -0, -0.0, 1.5e-3, 0.1, 1E+2, -1e5, 1.0e-400]"',
     '[ 1 1 100 100 0 -0 0.0015 0.1 100 -100000 0 ]'),
    (r'builtins.fromJSON "[9223372036854775807, 9223372036854775808, 18446744073709551615, '
     r'18446744073709551616, -9223372036854775808, -9223372036854775809, '
     r'123456789012345678901234567890]"',
     '[ 9223372036854775807 -9223372036854775808 -1 1.84467e+19 -9223372036854775808 '
     '-9.22337e+18 1.23457e+29 ]'),
    (r'builtins.fromJSON "{\"b\": 1, \"a\": {\"c\": null}, \"a\": 2}"', '{ a = 2; b = 1; }'),
    (r'builtins.fromJSON "{\"a\":2,\"a\":1}"', '{ a = 1; }'),
    (r'builtins.fromJSON "{\"x\": [1, 2.5, \"foo\", true, false, null], \"y\": {}, \"z\": []}"',
     '{ x = [ 1 2.5 "foo" true false null ]; y = { }; z = [ ]; }'),
    (r'builtins.fromJSON "  true  "', 'true'),
    (r'builtins.fromJSON " \n\t\r[1,\t2,\r\n 3 ,4]\n"', '[ 1 2 3 4 ]'),
    (r'builtins.fromJSON "\"\\u00e9\\ud83d\\ude00 \\\" \\\\ \\/ \\n\""', r'"é😀 \" \\ / \n"'),
    (r'builtins.fromJSON "\"\\u0000a\""', '""'),
    (r'builtins.fromJSON "{\"a\\u0000b\": 1}"', '{ "a\0b" = 1; }'),
    (r'builtins.fromJSON (builtins.toJSON { a = [1 2.5 "x"]; })', '{ a = [ 1 2.5 "x" ]; }'),
    (r'builtins.fromJSON "[[[[[]]]], {\"a\": {\"b\": {}}}]"', '[ [ [ [ [ ] ] ] ] { a = { b = { }; }; } ]'),
    # fromJSON: errors, with nlohmann::json's positions and messages
    (r'builtins.fromJSON 1', 'error: value is an integer while a string was expected'),
    (r'builtins.fromJSON ""',
     "error: [json.exception.parse_error.101] parse error at line 1, column 1: syntax error "
     "while parsing value - unexpected end of input; expected '[', '{', or a literal"),
    (r'builtins.fromJSON "[1,]"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 4: syntax error "
     "while parsing value - unexpected ']'; expected '[', '{', or a literal"),
    (r'builtins.fromJSON "]"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 1: syntax error "
     "while parsing value - unexpected ']'; expected '[', '{', or a literal"),
    (r'builtins.fromJSON "tru"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 4: syntax error "
     "while parsing value - invalid literal; last read: 'tru'"),
    (r'builtins.fromJSON "x"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 1: syntax error "
     "while parsing value - invalid literal; last read: 'x'"),
    (r'builtins.fromJSON "NaN"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 1: syntax error "
     "while parsing value - invalid literal; last read: 'N'"),
    (r'builtins.fromJSON "[true, fals]"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 12: syntax error "
     "while parsing value - invalid literal; last read: '[true, fals]'"),
    (r'builtins.fromJSON "[1,\n\n x"',
     "error: [json.exception.parse_error.101] parse error at line 3, column 2: syntax error "
     "while parsing value - invalid literal; last read: '1,<U+000A><U+000A> x'"),
    (r'builtins.fromJSON "1 2"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 3: syntax error "
     "while parsing value - unexpected number literal; expected end of input"),
    (r'builtins.fromJSON "01"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 2: syntax error "
     "while parsing value - unexpected number literal; expected end of input"),
    (r'builtins.fromJSON "{\"a\":1"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 7: syntax error "
     "while parsing object - unexpected end of input; expected '}'"),
    (r'builtins.fromJSON "{1:2}"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 2: syntax error "
     "while parsing object key - unexpected number literal; expected string literal"),
    (r'builtins.fromJSON "{\"a\":1,}"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 8: syntax error "
     "while parsing object key - unexpected '}'; expected string literal"),
    (r'builtins.fromJSON "{\"a\" 2}"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 6: syntax error "
     "while parsing object separator - unexpected number literal; expected ':'"),
    (r'builtins.fromJSON "[1 2]"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 4: syntax error "
     "while parsing array - unexpected number literal; expected ']'"),
    (r'builtins.fromJSON "[\n1,\n2 3]"',
     "error: [json.exception.parse_error.101] parse error at line 3, column 3: syntax error "
     "while parsing array - unexpected number literal; expected ']'"),
    (r'builtins.fromJSON "[\"a\", 12 x]"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 10: syntax error "
     "while parsing array - invalid literal; last read: '12 x'; expected ']'"),
    (r'builtins.fromJSON "[1.]"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 4: syntax error "
     "while parsing value - invalid number; expected digit after '.'; last read: '1.]'"),
    (r'builtins.fromJSON "-"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 2: syntax error "
     "while parsing value - invalid number; expected digit after '-'; last read: '-'"),
    (r'builtins.fromJSON "1e"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 3: syntax error "
     "while parsing value - invalid number; expected '+', '-', or digit after exponent; "
     "last read: '1e'"),
    (r'builtins.fromJSON "1e+"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 4: syntax error "
     "while parsing value - invalid number; expected digit after exponent sign; last read: '1e+'"),
    (r'builtins.fromJSON "1e400"',
     "error: [json.exception.out_of_range.406] number overflow parsing '1e400'"),
    (r'builtins.fromJSON "[-1e400]"',
     "error: [json.exception.out_of_range.406] number overflow parsing '-1e400'"),
    (r'builtins.fromJSON "\"abc"',
     "error: [json.exception.parse_error.101] parse error at line 1, column 5: syntax error "
     "while parsing value - invalid string: missing closing quote; last read: '\"abc'"),
    (r'builtins.fromJSON "\"a	b\""',
     "error: [json.exception.parse_error.101] parse error at line 1, column 3: syntax error "
     "while parsing value - invalid string: control character U+0009 (HT) must be escaped to "
     "\\u0009 or \\t; last read: '\"a<U+0009>'"),
    (r'builtins.fromJSON "\"\\x\""',
     "error: [json.exception.parse_error.101] parse error at line 1, column 3: syntax error "
     "while parsing value - invalid string: forbidden character after backslash; "
     "last read: '\"\\x'"),
    (r'builtins.fromJSON "\"\\u00\""',
     "error: [json.exception.parse_error.101] parse error at line 1, column 6: syntax error "
     "while parsing value - invalid string: '\\u' must be followed by 4 hex digits; "
     "last read: '\"\\u00\"'"),
    (r'builtins.fromJSON "\"\\ud83d\""',
     "error: [json.exception.parse_error.101] parse error at line 1, column 8: syntax error "
     "while parsing value - invalid string: surrogate U+D800..U+DBFF must be followed by "
     "U+DC00..U+DFFF; last read: '\"\\ud83d\"'"),
    (r'builtins.fromJSON "\"\\ud83d\\u0041\""',
     "error: [json.exception.parse_error.101] parse error at line 1, column 13: syntax error "
     "while parsing value - invalid string: surrogate U+D800..U+DBFF must be followed by "
     "U+DC00..U+DFFF; last read: '\"\\ud83d\\u0041'"),
    (r'builtins.fromJSON "\"\\udc00\""',
     "error: [json.exception.parse_error.101] parse error at line 1, column 7: syntax error "
     "while parsing value - invalid string: surrogate U+DC00..U+DFFF must follow "
     "U+D800..U+DBFF; last read: '\"\\udc00'"),
    # fromTOML
    ("builtins.fromTOML ''\n  a = 1\n  b = \"x\"\n  c = 1.5\n  d = true\n  e = [1, 2]\n"
     "  f = { g = 1 }\n  [h]\n  i = 2\n  [[j]]\n  k = 1\n  [[j]]\n  k = 2\n''",
     '{ a = 1; b = "x"; c = 1.5; d = true; e = [ 1 2 ]; f = { g = 1; }; h = { i = 2; }; '
     'j = [ { k = 1; } { k = 2; } ]; }'),
    ("fromTOML ''\n  a = inf\n  b = -inf\n  d = 0x10\n  e = 0o17\n  f = 0b11\n  g = 1_000\n"
     "  h = 1e10\n  i = 9223372036854775807\n''",
     '{ a = inf; b = -inf; d = 16; e = 15; f = 3; g = 1000; h = 1e+10; '
     'i = 9223372036854775807; }'),
    ("builtins.fromTOML ''\n  c = -9223372036854775809\n  d = 0x7fffffffffffffff\n"
     "  e = 0xffffffffffffffff\n  x = 9223372036854775808\n  f = 1.7976931348623157e308\n"
     "  g = -0.0\n  h = 5e-324\n  i = +inf\n  j = 0.1\n  o = 1e400\n''",
     '{ c = -9223372036854775808; d = 9223372036854775807; e = 9223372036854775807; '
     'f = 1.79769e+308; g = -0; h = 4.94066e-324; i = inf; j = 0.1; o = 1.79769e+308; '
     'x = 9223372036854775807; }'),
    ("builtins.fromTOML ''\n  k = \"\"\"\n  multi\n  line\"\"\"\n  l = 'lit\\\\eral'\n"
     "  m = \"\\u00e9\\U0001F600\"\n  n = \"x\\u0000y\"\n''",
     r'{ k = "multi\nline"; l = "lit\\\\eral"; m = "é😀"; n = "x"; }'),
    ("builtins.fromTOML ''\n  a.b.c = 1\n  a.d = 2\n  \"q x\" = 3\n  [t.u]\n  v = 1\n''",
     '{ a = { b = { c = 1; }; d = 2; }; "q x" = 3; t = { u = { v = 1; }; }; }'),
    ("builtins.fromTOML ''a = [[1], [\"x\"], [], [1, \"x\"]]''",
     '{ a = [ [ 1 ] [ "x" ] [ ] [ 1 "x" ] ]; }'),
    ("builtins.fromTOML ''''", '{ }'),
    ("builtins.toJSON (builtins.fromTOML ''\n  a = -nan\n  b = nan\n'')",
     r'"{\"a\":-nan,\"b\":nan}"'),
    ('builtins.fromTOML 1', 'error: value is an integer while a string was expected'),
    ("builtins.fromTOML ''d = 1979-05-27T07:32:00Z''",
     'error: while parsing a TOML string: Dates and times are not supported'),
    ("builtins.fromTOML ''d = 1979-05-27''",
     'error: while parsing a TOML string: Dates and times are not supported'),
    ("builtins.fromTOML ''d = 07:32:00''",
     'error: while parsing a TOML string: Dates and times are not supported'),
    ("builtins.fromTOML ''d = [ { e = 1979-05-27T07:32:00 } ]''",
     'error: while parsing a TOML string: Dates and times are not supported'),
    # toml11's syntax error messages are not reproduced: only their start is compared
    ("builtins.fromTOML ''a = ''", Prefix('error: while parsing a TOML string: ')),
    ("builtins.fromTOML ''x''", Prefix('error: while parsing a TOML string: ')),
    ("builtins.fromTOML ''\n  a = 1\n  a = 2\n''", Prefix('error: while parsing a TOML string: ')),
    # toXML
    (r'''builtins.toXML { b = 1; a = [ true null "x<&>\"'\n	" 1.5 /tmp/foo ]; c = { }; d = []; }''',
     r'''"<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <attrs>\n    <attr name=\"a\">\n'''
     r'''      <list>\n        <bool value=\"true\" />\n        <null />\n'''
     r'''        <string value=\"x&lt;&amp;&gt;&quot;'&#xA;\t\" />\n'''
     r'''        <float value=\"1.5\" />\n        <path value=\"/tmp/foo\" />\n      </list>\n'''
     r'''    </attr>\n    <attr name=\"b\">\n      <int value=\"1\" />\n    </attr>\n'''
     r'''    <attr name=\"c\">\n      <attrs>\n      </attrs>\n    </attr>\n'''
     r'''    <attr name=\"d\">\n      <list>\n      </list>\n    </attr>\n  </attrs>\n'''
     r'''</expr>\n"'''),
    (r'builtins.toXML [ 0.1 1.0e20 (1.0 / 3.0) 1.0 (-5) { "a<b" = 1; } ({ z, a, m ? 1 }: z) ]',
     r'''"<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <list>\n'''
     r'''    <float value=\"0.1\" />\n    <float value=\"1e+20\" />\n'''
     r'''    <float value=\"0.333333\" />\n    <float value=\"1\" />\n'''
     r'''    <int value=\"-5\" />\n    <attrs>\n      <attr name=\"a&lt;b\">\n'''
     r'''        <int value=\"1\" />\n      </attr>\n    </attrs>\n    <function>\n'''
     r'''      <attrspat>\n        <attr name=\"a\" />\n        <attr name=\"m\" />\n'''
     r'''        <attr name=\"z\" />\n      </attrspat>\n    </function>\n  </list>\n'''
     r'''</expr>\n"'''),
    (r'builtins.toXML { f = x: x; g = { a, b ? 1, ... }@args: a; h = { }: 1; '
     r'l = a@{ x }: x; m = builtins.map; n = builtins.map (x: x); }',
     r'''"<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <attrs>\n    <attr name=\"f\">\n'''
     r'''      <function>\n        <varpat name=\"x\" />\n      </function>\n    </attr>\n'''
     r'''    <attr name=\"g\">\n      <function>\n'''
     r'''        <attrspat ellipsis=\"1\" name=\"args\">\n          <attr name=\"a\" />\n'''
     r'''          <attr name=\"b\" />\n        </attrspat>\n      </function>\n    </attr>\n'''
     r'''    <attr name=\"h\">\n      <function>\n        <attrspat>\n        </attrspat>\n'''
     r'''      </function>\n    </attr>\n    <attr name=\"l\">\n      <function>\n'''
     r'''        <attrspat name=\"a\">\n          <attr name=\"x\" />\n        </attrspat>\n'''
     r'''      </function>\n    </attr>\n    <attr name=\"m\">\n      <unevaluated />\n'''
     r'''    </attr>\n    <attr name=\"n\">\n      <unevaluated />\n    </attr>\n'''
     r'''  </attrs>\n</expr>\n"'''),
    (r'let d = { type = "derivation"; drvPath = "/x.drv"; outPath = "/x"; name = "n"; }; '
     r'in builtins.toXML [ d d { type = "derivation"; } '
     r'{ type = "derivation"; outPath = 1; drvPath = ["x"]; } ]',
     r'''"<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <list>\n'''
     r'''    <derivation drvPath=\"/x.drv\" outPath=\"/x\">\n'''
     r'''      <attr name=\"drvPath\">\n        <string value=\"/x.drv\" />\n      </attr>\n'''
     r'''      <attr name=\"name\">\n        <string value=\"n\" />\n      </attr>\n'''
     r'''      <attr name=\"outPath\">\n        <string value=\"/x\" />\n      </attr>\n'''
     r'''      <attr name=\"type\">\n        <string value=\"derivation\" />\n      </attr>\n'''
     r'''    </derivation>\n    <derivation drvPath=\"/x.drv\" outPath=\"/x\">\n'''
     r'''      <repeated />\n    </derivation>\n    <derivation>\n      <repeated />\n'''
     r'''    </derivation>\n    <derivation>\n      <repeated />\n    </derivation>\n'''
     r'''  </list>\n</expr>\n"'''),
    (r'builtins.toXML { __toString = self: "x"; outPath = "y"; }',
     r'''"<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <attrs>\n'''
     r'''    <attr name=\"__toString\">\n      <function>\n        <varpat name=\"self\" />\n'''
     r'''      </function>\n    </attr>\n    <attr name=\"outPath\">\n'''
     r'''      <string value=\"y\" />\n    </attr>\n  </attrs>\n</expr>\n"'''),
    (r'builtins.toXML (builtins.toXML 1)',
     r'''"<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <string value=\"&lt;?xml '''
     r'''version='1.0' encoding='utf-8'?&gt;&#xA;&lt;expr&gt;&#xA;  &lt;int '''
     r'''value=&quot;1&quot; /&gt;&#xA;&lt;/expr&gt;&#xA;\" />\n</expr>\n"'''),
    (r'builtins.toXML { a = throw "boom"; }', 'error: boom'),
]

# `--json`: the printed document (Nix 2.8 writes no newline after it).
JSON_CASES = [
    (r'[0.1 1.0e20 (1.0 / 3.0) 1.0 "\n" { b = null; a = true; } ]',
     r'[0.1,1e+20,0.333333,1,"\n",{"a":true,"b":null}]'),
    (r'{ drv = { type = "derivation"; outPath = "/nix/store/x"; }; s = { __toString = _: "s"; }; }',
     r'{"drv":"/nix/store/x","s":"s"}'),
    (r'"${"\t"}é"', r'"\té"'),
    (r'x: x', 'error: cannot convert a function to JSON'),
    (r'{ a = builtins.map; }', "error: cannot convert the built-in function 'map' to JSON"),
]

# `--xml`: the document, with the source positions of attributes and functions.
XML_CASES = [
    (r'{ b = 1; f = x: x; g = { a, b ? 1, ... }@args: a; }',
     "<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <attrs>\n"
     '    <attr column="3" line="1" name="b" path="{ b = 1; f = x: x; g = { a, b ? 1, ... }@args: a; }">\n'
     '      <int value="1" />\n    </attr>\n'
     '    <attr column="10" line="1" name="f" path="{ b = 1; f = x: x; g = { a, b ? 1, ... }@args: a; }">\n'
     '      <function column="14" line="1" path="{ b = 1; f = x: x; g = { a, b ? 1, ... }@args: a; }">\n'
     '        <varpat name="x" />\n      </function>\n    </attr>\n'
     '    <attr column="20" line="1" name="g" path="{ b = 1; f = x: x; g = { a, b ? 1, ... }@args: a; }">\n'
     '      <function column="24" line="1" path="{ b = 1; f = x: x; g = { a, b ? 1, ... }@args: a; }">\n'
     '        <attrspat ellipsis="1" name="args">\n          <attr name="a" />\n'
     '          <attr name="b" />\n        </attrspat>\n      </function>\n    </attr>\n'
     '  </attrs>\n</expr>\n'),
    ('{\n  s = "a\\"b\\nc";\n  l = [ (args@{ x }: x) ];\n}',
     "<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <attrs>\n"
     '    <attr column="3" line="3" name="l" path="{&#xA;  s = &quot;a\\&quot;b\\nc&quot;;&#xA;  l = [ (args@{ x }: x) ];&#xA;}">\n'
     '      <list>\n'
     '        <function column="10" line="3" path="{&#xA;  s = &quot;a\\&quot;b\\nc&quot;;&#xA;  l = [ (args@{ x }: x) ];&#xA;}">\n'
     '          <attrspat name="args">\n            <attr name="x" />\n          </attrspat>\n'
     '        </function>\n      </list>\n    </attr>\n'
     '    <attr column="3" line="2" name="s" path="{&#xA;  s = &quot;a\\&quot;b\\nc&quot;;&#xA;  l = [ (args@{ x }: x) ];&#xA;}">\n'
     '      <string value="a&quot;b&#xA;c" />\n    </attr>\n  </attrs>\n</expr>\n'),
    (r'builtins.fromJSON "{\"a\": [1]}"',
     "<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <attrs>\n    <attr name=\"a\">\n"
     '      <list>\n        <int value="1" />\n      </list>\n    </attr>\n  </attrs>\n'
     '</expr>\n'),
]

MODES = {"eval": EVAL_CASES, "json": JSON_CASES, "xml": XML_CASES}


# -- running dtx --------------------------------------------------------------------------------

def first_error_line(e: Exception) -> str:
    text = e.render() if isinstance(e, EvalError) else str(e)
    return text.splitlines()[0]


def run_dtx(expr: str, mode: str) -> str:
    state = Evaluator()
    try:
        value = state.eval_string(expr, BASE_DIR)
        deep_force(value)
        if mode == "json":
            return to_json(state, value, set())
        if mode == "xml":
            return to_xml(state, value, set(), location=True)
        return print_value(value, strict=True)
    except Exception as e:  # parse errors and evaluation errors alike
        if not hasattr(e, "render") and type(e).__name__ != "ParseError":
            raise
        return first_error_line(e)


def _ids(cases):
    return [expr if len(expr) < 60 else expr[:57] + "..." for expr, _ in cases]


def _params():
    return [pytest.param(mode, i, id=f"{mode}-{i}-{name}")
            for mode, cases in MODES.items()
            for i, name in enumerate(_ids(cases))]


@pytest.mark.parametrize("mode,index", _params())
def test_dtx(mode, index):
    expr, expected = MODES[mode][index]
    actual = run_dtx(expr, mode)
    assert matches(expected, actual), f"{expr}\n  got:      {actual!r}\n  expected: {expected!r}"


# -- running Nix --------------------------------------------------------------------------------

NIX = shutil.which("nix-instantiate")
_SEP = "@@dtx-separator@@"


def _nix(args: list[str], exprs: list[str]) -> tuple[str, str, int]:
    env = dict(os.environ, NIX_PATH="")
    p = subprocess.run([NIX, "--eval", "--strict", *args, "-E", *exprs], cwd=BASE_DIR,
                       capture_output=True, text=True, env=env, check=False)
    return p.stdout, p.stderr, p.returncode


@functools.cache
def nix_results(mode: str) -> tuple[str, ...]:
    """Run every expression of a mode through Nix, in a few concurrent batches."""
    exprs = [expr for expr, _ in MODES[mode]]
    size = 12
    chunks = [exprs[i:i + size] for i in range(0, len(exprs), size)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        parts = pool.map(lambda chunk: _nix_batch(mode, chunk), chunks)
    return tuple(r for part in parts for r in part)


def _nix_batch(mode: str, exprs: list[str]) -> list[str]:
    """Evaluate expressions in as few processes as possible: a failing expression ends a
    process, and the next one carries on after it."""
    results: list[str] = []
    flags = {"eval": [], "json": ["--json"], "xml": ["--xml"]}[mode]
    while len(results) < len(exprs):
        todo = exprs[len(results):]
        if mode == "json":
            # `--json` prints documents back to back: put a marker string between them.
            batch = [x for e in todo for x in (e, f'"{_SEP}"')]
            out, err, rc = _nix(flags, batch)
            done = out.split(f'"{_SEP}"')[:-1]
        elif mode == "xml":
            out, err, rc = _nix(flags, todo)
            done = ["<?xml" + d for d in out.split("<?xml")[1:]]
            if rc != 0 and done and not done[-1].endswith("</expr>\n"):
                done.pop()
        else:
            out, err, rc = _nix(flags, todo)
            done = out.splitlines()
        results += done[:len(todo)]
        if rc != 0:
            results.append(err.splitlines()[0] if err else f"exit {rc}")
    return results


@pytest.mark.skipif(NIX is None, reason="nix-instantiate is not on PATH")
@pytest.mark.parametrize("mode,index", _params())
def test_nix(mode, index):
    expr, expected = MODES[mode][index]
    actual = nix_results(mode)[index]
    assert matches(expected, actual), f"{expr}\n  nix:      {actual!r}\n  expected: {expected!r}"


# -- unit tests of the pieces that need no parser -----------------------------------------------

class _FakeStore:
    def copy_path_to_store(self, path: str) -> str:
        return "/nix/store/00000000000000000000000000000000-" + path.rsplit("/", 1)[-1]


def test_to_json_copies_paths_and_collects_context():
    ctx: set = set()
    value = Attrs({"p": NixPath("/tmp/foo"), "l": [NixPath("/tmp/bar")]})
    text = to_json(_FakeStore(), value, ctx)
    assert text == ('{"l":["/nix/store/00000000000000000000000000000000-bar"],'
                    '"p":"/nix/store/00000000000000000000000000000000-foo"}')
    assert ctx == {"/nix/store/00000000000000000000000000000000-foo",
                   "/nix/store/00000000000000000000000000000000-bar"}


def test_from_json_skips_a_byte_order_mark():
    assert from_json("\ufeff[1]") == [1]


def test_from_json_rejects_ill_formed_utf8():
    with pytest.raises(EvalError) as e:
        from_json('"\udcff"')  # the byte 0xff, as surrogateescape keeps it
    assert str(e.value) == ("[json.exception.parse_error.101] parse error at line 1, column 2: "
                            "syntax error while parsing value - invalid string: ill-formed "
                            "UTF-8 byte; last read: '\"\udcff'")


def test_from_json_nests_deeply_without_recursion():
    depth = 20_000
    value = from_json("[" * depth + "]" * depth)
    for _ in range(depth - 1):
        value = value[0]
    assert value == []


def test_to_json_and_to_xml_collect_string_context():
    from dtx.runtime.values import CStr
    s = CStr("/nix/store/x-a", {"/nix/store/x-a"})
    value = Attrs({"a": [s], "b": Attrs({"outPath": CStr("/o", {"!out!/nix/store/y.drv"})})})
    ctx: set = set()
    assert to_json(None, value, ctx) == '{"a":["/nix/store/x-a"],"b":"/o"}'
    assert ctx == {"/nix/store/x-a", "!out!/nix/store/y.drv"}
    ctx = set()
    to_xml(None, value, ctx, location=False)
    assert ctx == {"/nix/store/x-a", "!out!/nix/store/y.drv"}


def test_lazy_printers_leave_thunks_alone():
    # `--json` / `--xml` without `--strict`: Nix fails on, or prints `<unevaluated />` for, a
    # value nobody has forced yet.
    state = Evaluator()
    value = state.eval_string("{ a = 1 + 1; }", BASE_DIR)
    assert to_xml(state, value, set(), location=False, strict=False) == (
        "<?xml version='1.0' encoding='utf-8'?>\n<expr>\n  <attrs>\n    <attr name=\"a\">\n"
        "      <unevaluated />\n    </attr>\n  </attrs>\n</expr>\n")
    with pytest.raises(EvalError, match="^cannot convert a thunk to JSON$"):
        to_json(state, value, set(), strict=False)
