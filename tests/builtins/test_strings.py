"""String, regex, version and hashing builtins against outputs taken from Nix 2.8.

Each case is an expression with the expected output written as a literal: the value as
`nix-instantiate --eval --strict` prints it, or the first line of the error. In expressions and
outputs, `@H` stands for a store path prefix, `@C` for a string with a path in its context and
`@D` for one with a derivation's outputs in its context. `test_dtx` evaluates each expression
in-process; `test_nix` (when `nix-instantiate` is on PATH) checks the same literal against real
Nix, running many expressions per process. Bytes that are not UTF-8 (from `substring`) appear as
lone surrogates on both sides.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import time

import pytest

from dtx.runtime.builtins.control import deep_force
from dtx.runtime.builtins.regex import compile_regex, split
from dtx.runtime.builtins.strings import base_name_of, dir_of
from dtx.runtime.builtins.versions import compare_versions, split_version
from dtx.runtime.errors import EvalError
from dtx.runtime.eval import Evaluator
from dtx.runtime.hashes import from_base32, to_base32, to_sri
from dtx.runtime.printer import print_value

BASE_DIR = "/tmp"
H = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
C = '(builtins.appendContext "ctx" { "@H-a" = { path = true; }; })'
D = ('(builtins.appendContext "drv" { "@H-d.drv" = { allOutputs = true; outputs = [ "out" ]; '
     '}; })')


def expand(text: str) -> str:
    """Replace the `@C`, `@D` and `@H` abbreviations."""
    return text.replace("@C", C).replace("@D", D).replace("@H", H)


# -- cases: (expression, expected `--eval --strict` output or first error line) -----------------

CASES = [
    # stringLength
    ('builtins.stringLength ""', '0'),
    ('builtins.stringLength "abc"', '3'),
    ('builtins.stringLength "héllo☃"', '9'),
    ('builtins.stringLength { outPath = "/x"; }', '2'),
    ('builtins.stringLength { __toString = s: "ab"; }', '2'),
    ('builtins.stringLength 1', 'error: cannot coerce an integer to a string'),
    ('builtins.stringLength [ ]', 'error: cannot coerce a list to a string'),
    ('builtins.stringLength null', 'error: cannot coerce null to a string'),
    ('builtins.stringLength @C', '3'),
    # substring
    ('builtins.substring 0 3 "nixos"', '"nix"'),
    ('builtins.substring 3 (-1) "nixos"', '"os"'),
    ('builtins.substring 1 (-2) "abc"', '"bc"'),
    ('builtins.substring 5 1 "abc"', '""'),
    ('builtins.substring 3 1 "abc"', '""'),
    ('builtins.substring 0 0 "abc"', '""'),
    ('builtins.substring 1 100 "abc"', '"bc"'),
    ('builtins.substring 0 1 ""', '""'),
    ('builtins.substring (-1) 1 "abc"', "error: negative start position in 'substring'"),
    ('builtins.substring 4294967296 1 "abc"', '"a"'),
    ('builtins.substring 2147483648 1 "abc"', "error: negative start position in 'substring'"),
    ('builtins.substring 1 4294967297 "abc"', '"b"'),
    ('builtins.substring 0 2 "é"', '"é"'),
    ('builtins.substring 1 1.0 "a"', 'error: value is a float while an integer was expected'),
    ('builtins.substring "1" 1 "a"', 'error: value is a string while an integer was expected'),
    ('builtins.substring 0 1 1', 'error: cannot coerce an integer to a string'),
    ('builtins.substring (-1) 1 1', 'error: cannot coerce an integer to a string'),
    ('builtins.substring 0 1 { outPath = "xy"; }', '"x"'),
    ('builtins.getContext (builtins.substring 1 0 @C)', '{ "@H-a" = { path = true; }; }'),
    ('builtins.getContext (builtins.substring 9 1 @C)', '{ "@H-a" = { path = true; }; }'),
    # replaceStrings
    ('builtins.replaceStrings [ "oo" "a" ] [ "a" "i" ] "foobar"', '"fabir"'),
    ('builtins.replaceStrings [ "" ] [ "-" ] "ab"', '"-a-b-"'),
    ('builtins.replaceStrings [ "" "a" ] [ "-" "b" ] "xay"', '"-x-a-y-"'),
    ('builtins.replaceStrings [ "a" "" ] [ "b" "-" ] "xay"', '"-xb-y-"'),
    ('builtins.replaceStrings [ "" ] [ "-" ] ""', '"-"'),
    ('builtins.replaceStrings [ ] [ ] "abc"', '"abc"'),
    ('builtins.replaceStrings [ "a" "aa" ] [ "1" "2" ] "aaa"', '"111"'),
    ('builtins.replaceStrings [ "aa" "a" ] [ "1" "2" ] "aaa"', '"12"'),
    ('builtins.replaceStrings [ "é" ] [ "e" ] "héé"', '"hee"'),
    ('builtins.replaceStrings [ "" ] [ "-" ] "hé"', '"-h-\udcc3-\udca9-"'),
    ('builtins.replaceStrings [ "a" ] [ "a" ] "aaa"', '"aaa"'),
    (r'builtins.replaceStrings [ "." "*" ] [ "\\." "\\*" ] "a.b*c"', r'"a\\.b\\*c"'),
    ('builtins.replaceStrings [ "a" ] [ ] "x"',
     "error: 'from' and 'to' arguments to 'replaceStrings' have different lengths"),
    ('builtins.replaceStrings [ "a" "b" ] [ "x" (throw "no") ] "a"', 'error: no'),
    ('builtins.replaceStrings [ 1 ] [ "x" ] "a"',
     'error: value is an integer while a string was expected'),
    ('builtins.replaceStrings [ "a" ] [ 1 ] "a"',
     'error: value is an integer while a string was expected'),
    ('builtins.replaceStrings [ "a" ] [ "x" ] /foo',
     'error: value is a path while a string was expected'),
    ('builtins.replaceStrings "a" [ "x" ] "a"',
     'error: value is a string while a list was expected'),
    ('builtins.getContext (builtins.replaceStrings [ "a" "b" ] [ @C "B" ] "xb")', '{ }'),
    ('builtins.getContext (builtins.replaceStrings [ "a" "b" ] [ @C "B" ] "xa")',
     '{ "@H-a" = { path = true; }; }'),
    ('builtins.getContext (builtins.replaceStrings [ "x" ] [ "y" ] @C)',
     '{ "@H-a" = { path = true; }; }'),
    # concatStringsSep
    ('builtins.concatStringsSep ", " [ "a" "b" "c" ]', '"a, b, c"'),
    ('builtins.concatStringsSep "," [ ]', '""'),
    ('builtins.concatStringsSep "" [ "a" "b" ]', '"ab"'),
    ('builtins.concatStringsSep "," [ "a" 1 ]', 'error: cannot coerce an integer to a string'),
    ('builtins.concatStringsSep "," [ null ]', 'error: cannot coerce null to a string'),
    ('builtins.concatStringsSep "," [ true ]', 'error: cannot coerce a Boolean to a string'),
    ('builtins.concatStringsSep "," [ [ ] ]', 'error: cannot coerce a list to a string'),
    ('builtins.concatStringsSep /foo [ "a" ]',
     'error: value is a path while a string was expected'),
    ('builtins.concatStringsSep "," "a"', 'error: value is a string while a list was expected'),
    ('builtins.getContext (builtins.concatStringsSep @C [ "a" "b" ])',
     '{ "@H-a" = { path = true; }; }'),
    ('builtins.getContext (builtins.concatStringsSep "," [ "a" @C @D ])',
     '{ "@H-a" = { path = true; }; "@H-d.drv" = { allOutputs = true; outputs = [ "out" ]; }; }'),
    # toString
    ('toString [ 1 [ ] null true false 1.5 "a" [ 2 [ 3 ] ] [ ] 4 /foo ]',
     '"1  1  1.500000 a 2 3 4 /foo"'),
    ('toString 1.0', '"1.000000"'),
    ('toString (-7)', '"-7"'),
    ('toString { __toString = s: "x"; }', '"x"'),
    ('toString { outPath = /foo; }', '"/foo"'),
    ('toString /foo/bar', '"/foo/bar"'),
    ('toString { __toString = s: 1; }', '"1"'),
    ('toString { a = 1; }', 'error: cannot coerce a set to a string'),
    ('toString (x: x)', 'error: cannot coerce a function to a string'),
    ('builtins.toString "s"', '"s"'),
    ('builtins.getContext (toString [ @C "x" ])', '{ "@H-a" = { path = true; }; }'),
    # split
    ('builtins.split "(,)|;" "a,b;c"', '[ "a" [ "," ] "b" [ null ] "c" ]'),
    ('builtins.split "a*" "bab"', '[ "" [ ] "b" [ ] "" [ ] "b" [ ] "" ]'),
    ('builtins.split "(a)|b" "xaybz"', '[ "x" [ "a" ] "y" [ null ] "z" ]'),
    ('builtins.split "" "abc"', '[ "" [ ] "a" [ ] "b" [ ] "c" [ ] "" ]'),
    ('builtins.split "x*" ""', '[ "" [ ] "" ]'),
    ('builtins.split "(a|ab)(c|bcd)" "xabcdx"', '[ "x" [ "a" "bcd" ] "x" ]'),
    ('builtins.split "[[:space:]]+" " a  b\tc\n"', '[ "" [ ] "a" [ ] "b" [ ] "c" [ ] "" ]'),
    ('builtins.split "(a)(b)?" "ab a"', '[ "" [ "a" "b" ] " " [ "a" null ] "" ]'),
    ('builtins.split "x" "abc"', '[ "abc" ]'),
    ('builtins.split "." "é"', '[ "" [ ] "" [ ] "" ]'),
    ('builtins.split "^a" "aaa"', '[ "" [ ] "aa" ]'),
    ('builtins.split "a$" "aaa"', '[ "aa" [ ] "" ]'),
    ('builtins.split "(ab|a)(bc|c)?" "abc abd"', '[ "" [ "ab" "c" ] " " [ "ab" null ] "d" ]'),
    ('builtins.split "(a|ab)*" "abab"', '[ "" [ "ab" ] "" [ null ] "" ]'),
    (r'builtins.split "\\." "1.2.3"', '[ "1" [ ] "2" [ ] "3" ]'),
    ('builtins.split "(" "a"', "error: invalid regular expression '('"),
    ('builtins.split 1 "a"', 'error: value is an integer while a string was expected'),
    ('builtins.split "a" 1', 'error: value is an integer while a string was expected'),
    ('builtins.split "a" /foo', 'error: value is a path while a string was expected'),
    ('builtins.getContext (builtins.head (builtins.split "y" @C))',
     '{ "@H-a" = { path = true; }; }'),
    ('builtins.getContext (builtins.head (builtins.split "c" @C))', '{ }'),
    ('builtins.split @C "x"',
     "error: the string 'ctx' is not allowed to refer to a store path (such as '@H-a')"),
    # match
    ('builtins.match "([a-z]+)-([0-9.]+)" "hello-2.10"', '[ "hello" "2.10" ]'),
    ('builtins.match "a(b)?" "a"', '[ null ]'),
    ('builtins.match "a" "ab"', 'null'),
    ('builtins.match "" ""', '[ ]'),
    ('builtins.match "(a|ab)(c|bcd)(d*)" "abcd"', '[ "a" "bcd" "" ]'),
    (r'builtins.match "\\d" "d"', "error: invalid regular expression '\\d'"),
    (r'builtins.match "\\]" "]"', "error: invalid regular expression '\\]'"),
    (r'builtins.match "a\\" "a"', "error: invalid regular expression 'a\\'"),
    (r'builtins.match "[\\]" "\\"', '[ ]'),
    ('builtins.match "[]a]*" "]a]"', '[ ]'),
    ('builtins.match "[^]a]*" "bcd"', '[ ]'),
    ('builtins.match "[a-]*" "a-"', '[ ]'),
    ('builtins.match "[-a]+" "-a"', '[ ]'),
    ('builtins.match "[]-a]+" "]^a"', '[ ]'),
    ('builtins.match "[]" "]"', "error: invalid regular expression '[]'"),
    ('builtins.match "[[]" "["', '[ ]'),
    ('builtins.match "[[:]" "["', "error: invalid regular expression '[[:]'"),
    ('builtins.match "a{" "a{"', "error: invalid regular expression 'a{'"),
    ('builtins.match "{" "{"', "error: invalid regular expression '{'"),
    ('builtins.match "}" "}"', '[ ]'),
    ('builtins.match "a{2}" "aa"', '[ ]'),
    ('builtins.match "a{,2}" "aa"', "error: invalid regular expression 'a{,2}'"),
    ('builtins.match "a{1,}" "aa"', '[ ]'),
    ('builtins.match "a{2,1}" "aa"', "error: invalid regular expression 'a{2,1}'"),
    ('builtins.match "a{ 1}" "a"', "error: invalid regular expression 'a{ 1}'"),
    ('builtins.match "*a" "a"', "error: invalid regular expression '*a'"),
    ('builtins.match "a**" "aa"', '[ ]'),
    ('builtins.match "a+?" "aa"', '[ ]'),
    ('builtins.match "()" ""', '[ "" ]'),
    ('builtins.match "a||b" ""', '[ ]'),
    ('builtins.match "(|a)" "a"', '[ "a" ]'),
    ('builtins.match "(a" ""', "error: invalid regular expression '(a'"),
    ('builtins.match "a)" "a)"', "error: invalid regular expression 'a)'"),
    ('builtins.match "a|*b" "b"', "error: invalid regular expression 'a|*b'"),
    ('builtins.match "^*a" "a"', "error: invalid regular expression '^*a'"),
    ('builtins.match "[[:alpha:]]+" "abC"', '[ ]'),
    ('builtins.match "[[:foo:]]+" "a"', "error: invalid regular expression '[[:foo:]]+'"),
    ('builtins.match "[[:word:]]" "a"', "error: invalid regular expression '[[:word:]]'"),
    (r'builtins.match "[[:space:][:digit:]]+" " 1\t"', '[ ]'),
    ('builtins.match "[[:upper:]]" "a"', 'null'),
    ('builtins.match "[[:alnum:][:punct:]]*" "a!~"', '[ ]'),
    ('builtins.match "[[:xdigit:]]*" "aF9"', '[ ]'),
    ('builtins.match "[[:w:]]*" "a_1"', '[ ]'),
    ('builtins.match "[[:d:]]*" "12"', '[ ]'),
    ('builtins.match "[^[:space:]]*" "ab"', '[ ]'),
    ('builtins.match "." "é"', 'null'),
    ('builtins.match "[é]" "é"', 'null'),
    (r'builtins.match "(.*)" "a\nb"', r'[ "a\nb" ]'),
    (r'builtins.match "a$" "a\n"', 'null'),
    ('builtins.match "a^b" "ab"', 'null'),
    ('builtins.match "(a)|(b)" "b"', '[ null "b" ]'),
    ('builtins.match "[a" "b"', "error: invalid regular expression '[a'"),
    ('builtins.match "[z-a]" "b"', "error: invalid regular expression '[z-a]'"),
    ('builtins.match "[a-a]" "a"', '[ ]'),
    ('builtins.match "[[.a.]]" "a"', '[ ]'),
    ('builtins.match "[[=a=]]" "a"', '[ ]'),
    ('builtins.match "[[.hyphen.]]" "-"', '[ ]'),
    ('builtins.match "[[.ab.]]" "a"', "error: invalid regular expression '[[.ab.]]'"),
    (r'builtins.match "\\1" "1"', "error: invalid regular expression '\\1'"),
    ('builtins.match "[a-z-0]+" "a"', "error: invalid regular expression '[a-z-0]+'"),
    ('builtins.match "[a[:digit:]-z]" "-"', "error: invalid regular expression '[a[:digit:]-z]'"),
    ('builtins.match "(a*)*" "aa"', '[ "" ]'),
    ('builtins.match "(a*)+" "b"', 'null'),
    ('builtins.match "(a|b)*" "ab"', '[ "b" ]'),
    ('builtins.match "a{99999}" "a"',
     "error: memory limit exceeded by regular expression 'a{99999}'"),
    ('builtins.match "(a){25000}" "a"',
     "error: memory limit exceeded by regular expression '(a){25000}'"),
    ('builtins.match "a{1,50000}" "a"',
     "error: memory limit exceeded by regular expression 'a{1,50000}'"),
    ('builtins.match "x{1000}" "a"', 'null'),
    ('builtins.match "(.)(.)(.)" "é!"', '[ "\udcc3" "\udca9" "!" ]'),
    (r'builtins.match "\\.\\[\\(\\)\\*\\+\\?\\{\\|\\^\\$\\\\" ".[()*+?{|^$\\"', '[ ]'),
    ('builtins.match ".*" @C', '[ ]'),
    ('builtins.match @C "x"',
     "error: the string 'ctx' is not allowed to refer to a store path (such as '@H-a')"),
    ('builtins.match "a" /foo', 'error: value is a path while a string was expected'),
    ('builtins.match 1 "a"', 'error: value is an integer while a string was expected'),
    ('builtins.getContext (builtins.head (builtins.match "(.*)" @C))', '{ }'),
    # parseDrvName
    ('map builtins.parseDrvName [ "nix-2.8" "a-b-c" "foo" "foo-" "-1" "a--1" "x-1-y" "a-B" "" '
     '"é-1" "a-b-1" "a-é" ]',
     '[ { name = "nix"; version = "2.8"; } { name = "a-b-c"; version = ""; } { name = "foo"; '
     'version = ""; } { name = "foo-"; version = ""; } { name = ""; version = "1"; } { name = '
     '"a"; version = "-1"; } { name = "x"; version = "1-y"; } { name = "a-B"; version = ""; } { '
     'name = ""; version = ""; } { name = "é"; version = "1"; } { name = "a-b"; version = "1"; } '
     '{ name = "a"; version = "é"; } ]'),
    ('builtins.parseDrvName /foo', 'error: value is a path while a string was expected'),
    ('builtins.parseDrvName @C',
     "error: the string 'ctx' is not allowed to refer to a store path (such as '@H-a')"),
    # Context
    ('builtins.hasContext "x"', 'false'),
    ('builtins.hasContext @C', 'true'),
    ('builtins.hasContext /foo', 'error: value is a path while a string was expected'),
    ('builtins.unsafeDiscardStringContext @C', '"ctx"'),
    ('builtins.hasContext (builtins.unsafeDiscardStringContext @C)', 'false'),
    ('builtins.unsafeDiscardStringContext 1', 'error: cannot coerce an integer to a string'),
    ('builtins.unsafeDiscardStringContext { outPath = "o"; }', '"o"'),
    ('builtins.getContext "x"', '{ }'),
    ('builtins.getContext @D', '{ "@H-d.drv" = { allOutputs = true; outputs = [ "out" ]; }; }'),
    ('builtins.getContext /foo', 'error: value is a path while a string was expected'),
    ('builtins.getContext (builtins.appendContext "x" { "@H-d.drv" = { outputs = [ "b" "a" "b" '
     ']; allOutputs = true; path = true; }; "@H-p" = { path = true; }; })',
     '{ "@H-d.drv" = { allOutputs = true; outputs = [ "a" "b" ]; path = true; }; "@H-p" = { path '
     '= true; }; }'),
    ('builtins.appendContext "x" { "@H-foo" = { allOutputs = true; }; }',
     'error: Tried to add all-outputs context of "@H-foo", which is not a derivation, to a string'),
    ('builtins.appendContext "x" { "@H-foo" = { outputs = [ "out" ]; }; }',
     'error: Tried to add derivation output context of "@H-foo", which is not a derivation, to a '
     'string'),
    ('builtins.appendContext "x" { "@H-foo" = { outputs = [ ]; }; }', '"x"'),
    ('builtins.appendContext "x" { "@Hxfoo" = { path = true; }; }', '"x"'),
    ('builtins.appendContext "x" { "@H-.foo" = { path = true; }; }', '"x"'),
    ('builtins.appendContext "x" { "@H" = { path = true; }; }',
     'error: Context key \'"@H"\' is not a store path'),
    ('builtins.appendContext "x" { "@H-" = { path = true; }; }',
     'error: Context key \'"@H-"\' is not a store path'),
    ('builtins.appendContext "x" { "@H-a b" = { path = true; }; }',
     'error: Context key \'"@H-a b"\' is not a store path'),
    ('builtins.appendContext "x" { "@H-a/b" = { path = true; }; }',
     'error: Context key \'"@H-a/b"\' is not a store path'),
    ('builtins.appendContext "x" { "/nix/store/eaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a" = { path = '
     'true; }; }',
     'error: Context key \'"/nix/store/eaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a"\' is not a store path'),
    ('builtins.appendContext "x" { foo = { path = true; }; }',
     "error: Context key 'foo' is not a store path"),
    ('builtins.appendContext "x" { "@H-a" = { path = 1; }; }',
     'error: value is an integer while a Boolean was expected'),
    ('builtins.appendContext "x" { "@H-a" = 1; }',
     'error: value is an integer while a set was expected'),
    ('builtins.getContext (builtins.appendContext "x" { "@H-a" = { foo = 1; path = false; }; })',
     '{ }'),
    ('builtins.appendContext /foo { }', 'error: value is a path while a string was expected'),
    ('builtins.appendContext "x" 1', 'error: value is an integer while a set was expected'),
    ('builtins.getContext (builtins.appendContext @C { "@H-b" = { path = true; }; })',
     '{ "@H-a" = { path = true; }; "@H-b" = { path = true; }; }'),
    ('builtins.getContext (builtins.unsafeDiscardOutputDependency (builtins.appendContext "x" { '
     '"@H-a.drv" = { allOutputs = true; outputs = [ "out" ]; path = true; }; }))',
     '{ "@H-a.drv" = { outputs = [ "out" ]; path = true; }; }'),
    ('builtins.unsafeDiscardOutputDependency 1', 'error: cannot coerce an integer to a string'),
    ('builtins.unsafeDiscardOutputDependency "x"', '"x"'),
    # toPath
    ('builtins.toPath "/a//b/../c/"', '"/a/c"'),
    ('builtins.toPath "a"', "error: string 'a' doesn't represent an absolute path"),
    ('builtins.toPath ""', "error: string '' doesn't represent an absolute path"),
    ('builtins.toPath /foo/bar', '"/foo/bar"'),
    ('builtins.toPath 1', 'error: cannot coerce an integer to a string'),
    ('builtins.typeOf (builtins.toPath "/a")', '"string"'),
    # Context
    ('builtins.getContext (builtins.toPath (builtins.appendContext "/a" { "@H-a" = { path = '
     'true; }; }))',
     '{ "@H-a" = { path = true; }; }'),
    # baseNameOf
    ('map baseNameOf [ "" "/" "a" "a/" "/a/b" "/a/b/" "a//" "//" "/a/b//" ]',
     '[ "" "" "a" "a" "b" "b" "" "" "" ]'),
    ('baseNameOf /foo/bar', '"bar"'),
    ('builtins.typeOf (baseNameOf /foo)', '"string"'),
    ('baseNameOf 1', 'error: cannot coerce an integer to a string'),
    ('baseNameOf { outPath = "/a/b"; }', '"b"'),
    # dirOf
    ('map dirOf [ "" "/" "a" "a/" "/a/b" "/a/b/" "a//" "//" "/a" "a/b" "//a" ]',
     '[ "." "/" "." "a" "/a" "/a/b" "a/" "/" "/" "a" "/" ]'),
    ('dirOf /foo/bar', '/foo'),
    ('builtins.typeOf (dirOf /foo)', '"path"'),
    ('dirOf 1', 'error: cannot coerce an integer to a string'),
    # Context
    ('builtins.getContext (baseNameOf (builtins.appendContext "/a/b" { "@H-a" = { path = true; '
     '}; }))',
     '{ "@H-a" = { path = true; }; }'),
    ('builtins.getContext (dirOf (builtins.appendContext "/a/b" { "@H-a" = { path = true; }; }))',
     '{ "@H-a" = { path = true; }; }'),
    # split
    ('map builtins.splitVersion [ "1.2.3" "1.2a3" "1..2" "" "-" "1.2-pre" "a.b-c_d" "2.0pre1" '
     '"1é2" ".1." "10.009" "1*2" ]',
     '[ [ "1" "2" "3" ] [ "1" "2" "a" "3" ] [ "1" "2" ] [ ] [ ] [ "1" "2" "pre" ] [ "a" "b" '
     '"c_d" ] [ "2" "0" "pre" "1" ] [ "1" "é" "2" ] [ "1" ] [ "10" "009" ] [ "1" "*" "2" ] ]'),
    # Version
    ('map (p: builtins.compareVersions (builtins.elemAt p 0) (builtins.elemAt p 1)) [ [ "1.0" '
     '"2.3" ] [ "2.1" "2.3" ] [ "2.3" "2.3" ] [ "2.5" "2.3" ] [ "3.1" "2.3" ] [ "2.3.1" "2.3" ] '
     '[ "2.3.1" "2.3a" ] [ "2.3pre1" "2.3" ] [ "2.3pre3" "2.3pre12" ] [ "2.3a" "2.3c" ] [ '
     '"2.3pre1" "2.3c" ] [ "2.3pre1" "2.3q" ] [ "1" "a" ] [ "a" "1" ] [ "" "1" ] [ "1" "" ] [ '
     '"01" "1" ] [ "a" "b" ] [ "pre" "a" ] [ "a" "pre" ] [ "2.3" "2.3.0" ] [ "1.x" "1.1" ] [ '
     '"1.2" "1-2" ] [ "99999999999999999999" "1" ] [ "2147483647" "1" ] [ "2147483648" "1" ] [ '
     '"1.0pre" "1.0" ] [ "1" "1pre" ] [ "" "" ] [ "aa" "b" ] [ "B" "a" ] [ "pre" "pre" ] [ "1.2" '
     '"1.2pre" ] ]',
     '[ -1 -1 0 1 1 1 1 -1 -1 -1 -1 -1 1 -1 -1 1 0 -1 -1 1 -1 -1 0 -1 1 -1 -1 1 0 -1 -1 0 1 ]'),
    ('builtins.compareVersions 1 "a"', 'error: value is an integer while a string was expected'),
    ('builtins.compareVersions "a" /foo', 'error: value is a path while a string was expected'),
    # split
    ('builtins.splitVersion /foo', 'error: value is a path while a string was expected'),
    # hashString
    ('builtins.hashString "sha256" "abc"',
     '"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"'),
    ('builtins.hashString "md5" ""', '"d41d8cd98f00b204e9800998ecf8427e"'),
    ('builtins.hashString "sha1" "é"', '"bf15be717ac1b080b4f1c456692825891ff5073d"'),
    ('builtins.hashString "sha512" "abc"',
     '"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c'
     '23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"'),
    ('builtins.hashString "sha3" "abc"', "error: unknown hash algorithm 'sha3'"),
    ('builtins.hashString "SHA256" "abc"', "error: unknown hash algorithm 'SHA256'"),
    ('builtins.hashString "sha256" /foo', 'error: value is a path while a string was expected'),
    # Context
    ('builtins.hashString "sha256" @C',
     '"0230c6b1d833c51cc426492022677b74c60d82891931221a42db9e7bb06205e9"'),
    ('builtins.hashString @C "x"',
     "error: the string 'ctx' is not allowed to refer to a store path (such as '@H-a')"),
    ('builtins.hasContext (builtins.hashString "sha256" @C)', 'false'),
    # substring
    ('builtins.hashString "md5" (builtins.substring 0 1 "é")',
     '"d78276f56f8ec8d4f8cca375e4534366"'),]


# -- running dtx --------------------------------------------------------------------------------

def run_dtx(expr: str) -> str:
    state = Evaluator()
    try:
        value = state.eval_string(expr, BASE_DIR)
        deep_force(value)
        return print_value(value, strict=True)
    except EvalError as e:
        return e.render().splitlines()[0]


def _ids():
    return [f"{i}-{expr[:50]}" for i, (expr, _) in enumerate(CASES)]


@pytest.mark.parametrize("index", range(len(CASES)), ids=_ids())
def test_dtx(index):
    expr, expected = CASES[index]
    actual = run_dtx(expand(expr))
    assert actual == expand(expected), f"{expr}\n  got:      {actual!r}\n  expected: {expected!r}"


# -- running Nix --------------------------------------------------------------------------------

NIX = shutil.which("nix-instantiate")


@functools.lru_cache(maxsize=None)
def nix_results() -> tuple[str, ...]:
    """Run every expression through Nix, many per process; a failing expression ends a process,
    and the next one carries on after it."""
    exprs = [expand(expr) for expr, _ in CASES]
    results: list[str] = []
    env = dict(os.environ, NIX_PATH="")
    while len(results) < len(exprs):
        todo = exprs[len(results):]
        p = subprocess.run([NIX, "--eval", "--strict", "-E", *todo], cwd=BASE_DIR,
                           capture_output=True, encoding="utf-8", errors="surrogateescape",
                           env=env)
        results += p.stdout.splitlines()[:len(todo)]
        if p.returncode != 0:
            results.append(p.stderr.splitlines()[0] if p.stderr else f"exit {p.returncode}")
    return tuple(results)


@pytest.mark.skipif(NIX is None, reason="nix-instantiate is not on PATH")
@pytest.mark.parametrize("index", range(len(CASES)), ids=_ids())
def test_nix(index):
    expr, expected = CASES[index]
    actual = nix_results()[index]
    assert actual == expand(expected), f"{expr}\n  nix:      {actual!r}\n  expected: {expected!r}"


# -- unit tests of the pieces that need no parser -----------------------------------------------

def test_base32_matches_nix_hash():
    # `nix-hash --type sha256 --to-base32 <hex>` and likewise for sha1 and md5.
    for data, algo, expected in [
        (b"abc", "sha256", "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"),
        (b"abc", "sha1", "kpcd173cq987hw957sx6m0868wv3x6d9"),
        (b"abc", "md5", "3jgzhjhz9zjvbb0kyj7jc500ch"),
    ]:
        digest = hashlib.new(algo, data).digest()
        assert to_base32(digest) == expected
        assert from_base32(expected, len(digest)) == digest


def test_base32_rejects_bad_input():
    for text in ["e" * 52, "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5", "z" * 52]:
        with pytest.raises(ValueError):
            from_base32(text, 32)


def test_sri():
    digest = hashlib.sha256(b"abc").digest()
    assert to_sri("sha256", digest) == "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="


def test_versions_directly():
    assert split_version("1.2pre3") == ["1", "2", "pre", "3"]
    assert compare_versions("1.0", "1.0.1") == -1
    assert compare_versions("1.0a", "1.0") == 1


def test_path_helpers():
    assert [base_name_of(p) for p in ["", "/", "a/b/", "a//"]] == ["", "", "b", ""]
    assert [dir_of(p) for p in ["", "/", "a", "/a", "a/b/"]] == [".", "/", ".", "/", "a/b"]


def test_regex_fast_path_for_unambiguous_patterns():
    for pattern in ["\n", "[ \t]+", "(,)", "[[:space:]]+", "a(b)c", "a*(ab)?", "(a|b)+"]:
        assert not compile_regex(pattern).ambiguous, pattern
    for pattern in ["a|ab", "(a|ab)c", "x(a*|b)"]:
        assert compile_regex(pattern).ambiguous, pattern


def test_split_is_leftmost_longest():
    # Outputs of Nix 2.8: alternations take the longest branch, repetitions are greedy.
    assert split("a|ab", "xabx") == ["x", [], "x"]
    assert split("(ab)?(abcd)?", "abcd") == ["", ["ab", None], "", [None, None], "c",
                                             [None, None], "d", [None, None], ""]
    assert split("a*(ab)?", "aab") == ["", [None], "", [None], "b", [None], ""]


def test_split_is_fast_on_long_strings():
    text = "word " * 20000
    start = time.monotonic()
    parts = split("[ ]+", text)
    assert len(parts) == 2 * 20000 + 1
    parts = split("(,|;)", "a;b," * 5000)
    assert len(parts) == 2 * 10000 + 1
    assert time.monotonic() - start < 5
