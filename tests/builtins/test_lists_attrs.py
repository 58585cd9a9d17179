"""Tests of the arithmetic, type, list and attribute-set builtins against Nix 2.8.

`CASES` pairs an expression with what `nix-instantiate --eval --strict -E` prints for it: its
output, or the first line of its error ("error: …"), recorded from Nix 2.8. `test_case` checks
dtx in-process against the recorded output; `test_oracle` runs every case through real Nix again
when `nix-instantiate` is on PATH (the cases that succeed in one batched process, the errors in
parallel), so the recorded outputs cannot drift from the specification.

The cases cover each builtin's results, its laziness (which arguments and elements it forces and
when), the order in which it checks its arguments, and its error messages.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from dtx.runtime.builtins.control import deep_force
from dtx.runtime.errors import EvalError
from dtx.runtime.eval import Evaluator, run_deep
from dtx.runtime.printer import print_value
from dtx.runtime.values import Attrs, CStr

NIX = shutil.which("nix-instantiate")

CASES = [
    # arith.py: add, sub, mul, div, bit operations, lessThan, ceil, floor
    ('builtins.add 1 2', '3'),
    ('builtins.add 1 2.5', '3.5'),
    ('builtins.add 1.5 2', '3.5'),
    ('builtins.add 9223372036854775807 1', '-9223372036854775808'),
    ('builtins.add 1 "a"', 'error: value is a string while an integer was expected'),
    ('builtins.add 1.0 "a"', 'error: value is a string while a float was expected'),
    ('builtins.add "a" 1', 'error: value is a string while an integer was expected'),
    ('builtins.add true 1', 'error: value is a Boolean while an integer was expected'),
    ('builtins.sub 10 3', '7'),
    ('builtins.sub 1 2.5', '-1.5'),
    ('builtins.sub (-9223372036854775807) 2', '9223372036854775807'),
    ('builtins.sub 1 "a"', 'error: value is a string while an integer was expected'),
    ('builtins.sub 1.5 "a"', 'error: value is a string while a float was expected'),
    ('builtins.mul 6 7', '42'),
    ('builtins.mul 4294967296 4294967296', '0'),
    ('builtins.mul 1.5 2', '3'),
    ('builtins.mul 1.5 "a"', 'error: value is a string while a float was expected'),
    ('1 * "a"', 'error: value is a string while an integer was expected'),
    ('builtins.div 7 2', '3'),
    ('builtins.div (-7) 2', '-3'),
    ('builtins.div 7 (-2)', '-3'),
    ('builtins.div 7.0 2', '3.5'),
    ('builtins.div 7 2.0', '3.5'),
    ('builtins.div 1 0', 'error: division by zero'),
    ('builtins.div 1.0 0', 'error: division by zero'),
    ('builtins.div 1 0.0', 'error: division by zero'),
    ('builtins.div (-9223372036854775807-1) (-1)', 'error: overflow in integer division'),
    ('builtins.div "a" 1', 'error: value is a string while an integer was expected'),
    ('builtins.div 1 "a"', 'error: value is a string while a float was expected'),
    ('builtins.div "a" 0', 'error: division by zero'),
    ('7 / 2', '3'),
    ('builtins.bitAnd 12 10', '8'),
    ('builtins.bitOr 12 10', '14'),
    ('builtins.bitXor 12 10', '6'),
    ('builtins.bitAnd (-1) 255', '255'),
    ('builtins.bitXor (-1) 0', '-1'),
    ('builtins.bitOr (-9223372036854775807-1) 1', '-9223372036854775807'),
    ('builtins.bitAnd 1.0 1', 'error: value is a float while an integer was expected'),
    ('builtins.bitAnd 1.0 "a"', 'error: value is a float while an integer was expected'),
    ('builtins.bitXor "b" 1.0', 'error: value is a string while an integer was expected'),
    ('builtins.bitOr 1 null', 'error: value is null while an integer was expected'),
    ('builtins.lessThan 1 2', 'true'),
    ('builtins.lessThan 2 1.5', 'false'),
    ('builtins.lessThan 1.5 2', 'true'),
    ('builtins.lessThan "abc" "abd"', 'true'),
    ('builtins.lessThan "b" "abc"', 'false'),
    ('builtins.lessThan "" "a"', 'true'),
    ('builtins.lessThan [1 2] [1 3]', 'true'),
    ('builtins.lessThan [1 2] [1 2 0]', 'true'),
    ('builtins.lessThan [2] [1 5]', 'false'),
    ('builtins.lessThan [] []', 'false'),
    ('builtins.lessThan /a /b', 'true'),
    ('builtins.lessThan 1 "a"', 'error: cannot compare an integer with a string'),
    ('builtins.lessThan {} {}', 'error: cannot compare a set with a set'),
    ('builtins.lessThan true false', 'error: cannot compare a Boolean with a Boolean'),
    ('builtins.lessThan null null', 'error: cannot compare null with null'),
    ('builtins.lessThan [1 "a"] [1 2]', 'error: cannot compare a string with an integer'),
    ('builtins.ceil 1.5', '2'),
    ('builtins.ceil (-1.5)', '-1'),
    ('builtins.ceil 3', '3'),
    ('builtins.ceil 1.0', '1'),
    ('builtins.ceil "a"', 'error: value is a string while a float was expected'),
    ('builtins.floor 1.5', '1'),
    ('builtins.floor (-1.5)', '-2'),
    ('builtins.floor 9007199254740993', '9007199254740992'),
    ('builtins.floor 2', '2'),
    ('builtins.floor null', 'error: value is null while a float was expected'),

    # types.py: typeOf, the is… predicates, functionArgs
    ('builtins.typeOf 1', '"int"'),
    ('builtins.typeOf 1.0', '"float"'),
    ('builtins.typeOf "s"', '"string"'),
    ('builtins.typeOf ./.', '"path"'),
    ('builtins.typeOf null', '"null"'),
    ('builtins.typeOf true', '"bool"'),
    ('builtins.typeOf {}', '"set"'),
    ('builtins.typeOf []', '"list"'),
    ('builtins.typeOf (x: x)', '"lambda"'),
    ('builtins.typeOf builtins.map', '"lambda"'),
    ('builtins.typeOf (builtins.map (x: x))', '"lambda"'),
    ('builtins.typeOf {__functor = self: x: x;}', '"set"'),
    ('[ (isNull null) (isNull 0) (isNull {}) (builtins.isNull null) ]',
     '[ true false false true ]'),
    ('[ (builtins.isFunction (x: x)) (builtins.isFunction builtins.map) (builtins.isFunction (builtins.map (x: x))) (builtins.isFunction {__functor = s: x: x;}) (builtins.isFunction 1) ]',
     '[ true true true false false ]'),
    ('[ (builtins.isInt 1) (builtins.isInt 1.0) (builtins.isInt "1") ]', '[ true false false ]'),
    ('[ (builtins.isFloat 1.0) (builtins.isFloat 1) ]', '[ true false ]'),
    ('[ (builtins.isBool true) (builtins.isBool null) (builtins.isBool 0) ]',
     '[ true false false ]'),
    ('[ (builtins.isAttrs {}) (builtins.isAttrs []) ]', '[ true false ]'),
    ('[ (builtins.isList []) (builtins.isList {}) ]', '[ true false ]'),
    ('[ (builtins.isPath ./.) (builtins.isPath "/a") ]', '[ true false ]'),
    ('builtins.isInt (throw "forced")', 'error: forced'),
    ('builtins.functionArgs ({a, b ? 1, ...}: a)', '{ a = false; b = true; }'),
    ('builtins.functionArgs ({a, b ? 1}: a)', '{ a = false; b = true; }'),
    ('builtins.functionArgs (a@{x, y ? 2}: 1)', '{ x = false; y = true; }'),
    ('builtins.functionArgs ({...}: 1)', '{ }'),
    ('builtins.functionArgs (x: x)', '{ }'),
    ('builtins.functionArgs builtins.map', '{ }'),
    ('builtins.functionArgs (builtins.map (x: x))', '{ }'),
    ('builtins.functionArgs 1', "error: 'functionArgs' requires a function"),
    ('builtins.functionArgs {__functor = s: x: x;}', "error: 'functionArgs' requires a function"),
    ('builtins.unsafeGetAttrPos "x" (builtins.functionArgs ({x}: 1))',
     '{ column = 56; file = "builtins.unsafeGetAttrPos \\"x\\" (builtins.functionArgs ({x}: 1))"; line = 1; }'),

    # map
    ('map (x: x * 2) [1 2 3]', '[ 2 4 6 ]'),
    ('map (x: x) []', '[ ]'),
    ('builtins.map (x: [x]) [1 2]', '[ [ 1 ] [ 2 ] ]'),
    ('builtins.length (map (x: throw "no") [1 2])', '2'),
    ('builtins.length (map 1 [1])', '1'),
    ('map 1 [1]', 'error: attempt to call something which is not a function but an integer'),
    ('map (throw "x") []', '[ ]'),
    ('map (x: x) 1', 'error: value is an integer while a list was expected'),
    ('map (x: x) (throw "lst")', 'error: lst'),
    ('builtins.elemAt (map (x: if x == 1 then throw "one" else x) [1 2]) 1', '2'),

    # filter
    ('builtins.filter (x: x > 1) [1 2 3]', '[ 2 3 ]'),
    ('builtins.filter (x: true) []', '[ ]'),
    ('builtins.filter (x: x) [true false true]', '[ true true ]'),
    ('builtins.length (builtins.filter (x: true) [(throw "x")])', '1'),
    ('builtins.filter (x: 1) [1]', 'error: value is an integer while a Boolean was expected'),
    ('builtins.filter 1 []', 'error: value is an integer while a function was expected'),
    ('builtins.filter 1 [1]', 'error: value is an integer while a function was expected'),
    ('builtins.filter 1 (throw "x")', 'error: value is an integer while a function was expected'),
    ('builtins.filter (x: true) 1', 'error: value is an integer while a list was expected'),

    # foldl'
    ("builtins.foldl' (acc: x: acc + x) 0 [1 2 3]", '6'),
    ("builtins.foldl' (acc: x: acc ++ [x]) [] [1 2 3]", '[ 1 2 3 ]'),
    ('builtins.foldl\' (acc: x: x) (throw "init") [1]', '1'),
    ('builtins.foldl\' (acc: x: acc) (throw "init") []', 'error: init'),
    ("builtins.foldl' (a: b: a) 0 []", '0'),
    ("builtins.foldl' (acc: x: acc + x) 0 (builtins.genList (x: x) 100000)", '4999950000'),
    ("builtins.foldl' builtins.add 0 [1 2 3]", '6'),
    ("builtins.foldl' (builtins.add) 0.5 [1 2]", '3.5'),
    ("builtins.foldl' 1 0 [1]", 'error: value is an integer while a function was expected'),
    ("builtins.foldl' 1 0 []", 'error: value is an integer while a function was expected'),
    ("builtins.foldl' 1 0 1", 'error: value is an integer while a function was expected'),
    ("builtins.foldl' (a: b: a) 0 1", 'error: value is an integer while a list was expected'),
    ("builtins.foldl' (a: b: { inherit a; }) 0 [1 2]", '{ a = { a = 0; }; }'),

    # genList
    ('builtins.genList (x: x * x) 4', '[ 0 1 4 9 ]'),
    ('builtins.genList (x: x) 0', '[ ]'),
    ('builtins.genList (x: x) (-1)', 'error: cannot create list of size -1'),
    ('builtins.genList 1 2',
     'error: attempt to call something which is not a function but an integer'),
    ('builtins.genList 1 0', '[ ]'),
    ('builtins.length (builtins.genList 1 2)', '2'),
    ('builtins.genList (throw "x") 0', '[ ]'),
    ('builtins.genList (x: x) "3"', 'error: value is a string while an integer was expected'),
    ('builtins.genList (x: x) 2.0', 'error: value is a float while an integer was expected'),
    ('builtins.elemAt (builtins.genList (x: if x == 0 then throw "zero" else x) 3) 2', '2'),

    # elemAt, head, tail, length
    ('builtins.elemAt [1 2 3] 1', '2'),
    ('builtins.elemAt [1] 1', 'error: list index 1 is out of bounds'),
    ('builtins.elemAt [1] (-1)', 'error: list index -1 is out of bounds'),
    ('builtins.elemAt [] 0', 'error: list index 0 is out of bounds'),
    ('builtins.elemAt 1 1', 'error: value is an integer while a list was expected'),
    ('builtins.elemAt 1 "a"', 'error: value is a string while an integer was expected'),
    ('builtins.elemAt [1] 1.0', 'error: value is a float while an integer was expected'),
    ('builtins.elemAt [(throw "no") 2] 1', '2'),
    ('builtins.head [1 2]', '1'),
    ('builtins.head [1 (throw "x")]', '1'),
    ('builtins.head []', 'error: list index 0 is out of bounds'),
    ('builtins.head 1', 'error: value is an integer while a list was expected'),
    ('builtins.head [(throw "first")]', 'error: first'),
    ('builtins.tail [1 2 3]', '[ 2 3 ]'),
    ('builtins.tail [1]', '[ ]'),
    ('builtins.tail []', "error: 'tail' called on an empty list"),
    ('builtins.tail 1', 'error: value is an integer while a list was expected'),
    ('builtins.length (builtins.tail [(throw "x") (throw "y")])', '1'),
    ('builtins.length [1 2 3]', '3'),
    ('builtins.length []', '0'),
    ('builtins.length [(throw "a") (throw "b")]', '2'),
    ('builtins.length 1', 'error: value is an integer while a list was expected'),
    ('builtins.length {}', 'error: value is a set while a list was expected'),

    # elem
    ('builtins.elem 2 [1 2 3]', 'true'),
    ('builtins.elem 4 [1 2 3]', 'false'),
    ('builtins.elem 1 [1.0]', 'true'),
    ('builtins.elem [1] [[1] [2]]', 'true'),
    ('builtins.elem {a = 1;} [{a = 1;}]', 'true'),
    ('builtins.elem "a" ["b" 1 null "a"]', 'true'),
    ('builtins.elem (throw "x") []', 'false'),
    ('builtins.elem 1 1', 'error: value is an integer while a list was expected'),
    ('builtins.elem 1 [(throw "later")]', 'error: later'),
    ('builtins.elem 1 [1 (throw "later")]', 'true'),
    ('let f = x: x; in builtins.elem f [f]', 'true'),
    ('let f = x: x; in builtins.elem f (map (x: f) [1])', 'false'),
    ('builtins.elem (x: x) [(x: x)]', 'false'),

    # concatLists, concatMap
    ('builtins.concatLists [[1 2] [] [3]]', '[ 1 2 3 ]'),
    ('builtins.concatLists []', '[ ]'),
    ('builtins.concatLists [1]', 'error: value is an integer while a list was expected'),
    ('builtins.concatLists 1', 'error: value is an integer while a list was expected'),
    ('builtins.length (builtins.concatLists [[(throw "a")] [(throw "b")]])', '2'),
    ('builtins.concatMap (x: [x x]) [1 2]', '[ 1 1 2 2 ]'),
    ('builtins.concatMap (x: []) [1 2]', '[ ]'),
    ('builtins.concatMap (x: 1) [1]', 'error: value is an integer while a list was expected'),
    ('builtins.concatMap 1 []', 'error: value is an integer while a function was expected'),
    ('builtins.concatMap (x: [x]) 1', 'error: value is an integer while a list was expected'),

    # any, all
    ('builtins.any (x: x > 2) [1 2 3]', 'true'),
    ('builtins.any (x: x > 5) [1 2 3]', 'false'),
    ('builtins.any (x: x) []', 'false'),
    ('builtins.any (x: x) [true (throw "short-circuit")]', 'true'),
    ('builtins.any (x: 1) [1]', 'error: value is an integer while a Boolean was expected'),
    ('builtins.any 1 1', 'error: value is an integer while a function was expected'),
    ('builtins.any (x: x) 1', 'error: value is an integer while a list was expected'),
    ('builtins.all (x: x > 0) [1 2 3]', 'true'),
    ('builtins.all (x: x > 1) [1 2 3]', 'false'),
    ('builtins.all (x: x) []', 'true'),
    ('builtins.all (x: x) [false (throw "short-circuit")]', 'false'),
    ('builtins.all (x: null) [1]', 'error: value is null while a Boolean was expected'),
    ('builtins.all 1 [1]', 'error: value is an integer while a function was expected'),
    ('builtins.all (x: x) 1', 'error: value is an integer while a list was expected'),

    # sort (comparators that are not strict weak orders give Nix's order)
    ('builtins.sort builtins.lessThan [483 249 526 147 42 77]', '[ 42 77 147 249 483 526 ]'),
    ('builtins.sort builtins.lessThan ["b" "a" "c" "" "ab"]', '[ "" "a" "ab" "b" "c" ]'),
    ('builtins.sort builtins.lessThan [3 1.5 2 0.5]', '[ 0.5 1.5 2 3 ]'),
    ('builtins.sort builtins.lessThan [[2] [1 2] [1] []]', '[ [ ] [ 1 ] [ 1 2 ] [ 2 ] ]'),
    ('builtins.sort builtins.lessThan [1 "a"]', 'error: cannot compare a string with an integer'),
    ('builtins.sort builtins.lessThan [{} {}]', 'error: cannot compare a set with a set'),
    ('builtins.sort builtins.lessThan [{}]', '[ { } ]'),
    ('builtins.sort (a: b: a < b) [5 3 9 1 7 2 8 6 4 0 11 15 13 12 14 10 3]',
     '[ 0 1 2 3 3 4 5 6 7 8 9 10 11 12 13 14 15 ]'),
    ('builtins.sort (a: b: a > b) [5 3 9 1 7 2 8 6 4 0]', '[ 9 8 7 6 5 4 3 2 1 0 ]'),
    ('builtins.sort (a: b: a.k < b.k) [{k = 2; v = "a";} {k = 1; v = "b";} {k = 2; v = "c";} {k = 1; v = "d";} {k = 0; v = "e";}]',
     '[ { k = 0; v = "e"; } { k = 1; v = "b"; } { k = 1; v = "d"; } { k = 2; v = "a"; } { k = 2; v = "c"; } ]'),
    ('builtins.sort (a: b: true) [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17]',
     '[ 17 16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 ]'),
    ('builtins.sort (a: b: true) (builtins.genList (x: x) 40)',
     '[ 39 38 37 36 35 34 33 32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17 16 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1 0 ]'),
    ('builtins.sort (a: b: false) (builtins.genList (x: x) 40)',
     '[ 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 ]'),
    ('builtins.sort (a: b: builtins.bitAnd (a * 7 + b * 13) 4 == 0) (builtins.genList (x: x) 57)',
     '[ 13 28 27 35 20 30 22 19 14 6 32 24 16 8 49 42 44 25 33 41 31 46 56 23 47 55 5 29 0 34 18 10 2 36 45 43 38 21 11 48 40 50 26 9 17 4 7 12 15 39 37 52 54 53 3 51 1 ]'),
    ('builtins.sort (a: b: builtins.bitAnd (a * 31 + b * 17) 8 != 0) (builtins.genList (x: x * 3) 100)',
     '[ 189 186 297 168 39 183 231 294 165 36 180 228 147 291 18 162 210 33 81 177 225 273 144 288 15 159 207 30 78 174 222 270 141 285 12 60 156 204 252 27 75 123 171 219 267 138 282 9 57 153 201 249 24 72 120 216 264 135 279 6 54 102 150 198 246 21 69 117 213 261 132 276 3 51 99 195 243 66 114 258 129 0 48 96 192 240 63 111 255 126 45 93 237 108 42 90 234 105 87 84 ]'),
    ('builtins.sort (a: b: builtins.bitAnd (a * 5 + b) 2 == 0) (builtins.genList (x: 50 - x) 33)',
     '[ 38 39 42 46 28 29 32 36 18 19 22 31 27 23 41 37 33 26 30 34 47 43 35 50 20 24 40 44 48 49 45 25 21 ]'),
    ('builtins.sort (a: b: a < b) (builtins.genList (x: builtins.bitAnd (x * 7919) 127) 200)',
     '[ 0 0 1 1 2 2 3 3 4 4 5 6 7 8 9 9 10 10 11 11 12 12 13 13 14 15 16 17 18 18 19 19 20 20 21 21 22 23 24 25 26 26 27 27 28 28 29 29 30 30 31 32 33 34 35 35 36 36 37 37 38 38 39 40 41 42 43 43 44 44 45 45 46 46 47 47 48 49 50 51 52 52 53 53 54 54 55 55 56 57 58 59 60 60 61 61 62 62 63 63 64 64 65 66 67 68 69 69 70 70 71 71 72 72 73 73 74 75 76 77 77 78 78 79 79 80 80 81 81 82 83 84 85 86 86 87 87 88 88 89 89 90 90 91 92 93 94 94 95 95 96 96 97 97 98 98 99 100 101 102 103 103 104 104 105 105 106 106 107 107 108 109 110 111 111 112 112 113 113 114 114 115 115 116 117 118 119 120 120 121 121 122 122 123 123 124 124 125 126 127 ]'),
    ('builtins.sort (a: b: a < b) []', '[ ]'),
    ('builtins.sort (a: b: a < b) [1]', '[ 1 ]'),
    ('builtins.sort (a: b: 1) [1 2]', 'error: value is an integer while a Boolean was expected'),
    ('builtins.sort (a: b: 1) [1]', '[ 1 ]'),
    ('builtins.sort 1 []', 'error: value is an integer while a function was expected'),
    ('builtins.sort 1 [1]', 'error: value is an integer while a function was expected'),
    ('builtins.sort (a: b: true) 1', 'error: value is an integer while a list was expected'),
    ('builtins.sort (a: b: a < b) [2 (throw "elem")]', 'error: elem'),
    ('builtins.sort (a: b: true) [(throw "forced even if unused")]',
     'error: forced even if unused'),

    # partition, groupBy
    ('builtins.partition (x: x > 2) [5 1 3 2]', '{ right = [ 5 3 ]; wrong = [ 1 2 ]; }'),
    ('builtins.partition (x: x) []', '{ right = [ ]; wrong = [ ]; }'),
    ('builtins.partition (x: true) [(throw "x")]', 'error: x'),
    ('builtins.partition (x: 1) [1]', 'error: value is an integer while a Boolean was expected'),
    ('builtins.partition 1 []', 'error: value is an integer while a function was expected'),
    ('builtins.partition (x: x) 1', 'error: value is an integer while a list was expected'),
    ('builtins.groupBy (x: x) ["a" "b" "a"]', '{ a = [ "a" "a" ]; b = [ "b" ]; }'),
    ('builtins.groupBy (s: builtins.substring 0 1 s) ["foo" "bar" "baz"]',
     '{ b = [ "bar" "baz" ]; f = [ "foo" ]; }'),
    ('builtins.groupBy (x: if x > 2 then "big" else "small") [1 5 2 7 3]',
     '{ big = [ 5 7 3 ]; small = [ 1 2 ]; }'),
    ('builtins.groupBy (x: x) []', '{ }'),
    ('builtins.groupBy (x: 1) [1]', 'error: value is an integer while a string was expected'),
    ('builtins.groupBy (x: "a") [(throw "x")]', 'error: x'),
    ('builtins.groupBy 1 []', 'error: value is an integer while a function was expected'),
    ('builtins.groupBy (x: x) 1', 'error: value is an integer while a list was expected'),

    # genericClosure
    ('builtins.genericClosure {startSet = [{key = 1;}]; operator = x: if x.key < 5 then [{key = x.key + 1;} {key = x.key * 2;}] else [];}',
     '[ { key = 1; } { key = 2; } { key = 3; } { key = 4; } { key = 6; } { key = 5; } { key = 8; } ]'),
    ('builtins.genericClosure {startSet = [{key = 5;}]; operator = item: [{key = if item.key / 2 * 2 == item.key then item.key / 2 else 3 * item.key + 1;}];}',
     '[ { key = 5; } { key = 16; } { key = 8; } { key = 4; } { key = 2; } { key = 1; } ]'),
    ('builtins.genericClosure {startSet = [{key = "b";} {key = "a";} {key = "b"; x = 1;}]; operator = x: [];}',
     '[ { key = "b"; } { key = "a"; } ]'),
    ('builtins.genericClosure {startSet = [{key = [1 2];} {key = [1 2]; x = 1;} {key = [1];}]; operator = x: [];}',
     '[ { key = [ 1 2 ]; } { key = [ 1 ]; } ]'),
    ('builtins.genericClosure {startSet = [{key = 1;} {key = 1.0; x = 2;}]; operator = x: [];}',
     '[ { key = 1; } ]'),
    ('builtins.genericClosure {startSet = [{key = 1.5;} {key = 1;} {key = 2;}]; operator = x: [];}',
     '[ { key = 1.5; } { key = 1; } { key = 2; } ]'),
    ('builtins.genericClosure {startSet = [{key = true;}]; operator = x: [];}',
     '[ { key = true; } ]'),
    ('builtins.genericClosure {startSet = [{key = null;}]; operator = x: [];}',
     '[ { key = null; } ]'),
    ('builtins.genericClosure {startSet = [{key = true;} {key = true;}]; operator = x: [];}',
     'error: cannot compare a Boolean with a Boolean'),
    ('builtins.genericClosure {startSet = []; operator = throw "op";}', 'error: op'),
    ('builtins.genericClosure {startSet = []; operator = 1;}', '[ ]'),
    ('builtins.genericClosure {startSet = [{key = 1;} {key = "a";}]; operator = x: [];}',
     'error: cannot compare a string with an integer'),
    ('builtins.genericClosure {startSet = [{key = "a";} {key = 1;}]; operator = x: [];}',
     'error: cannot compare an integer with a string'),
    ('builtins.genericClosure {startSet = [{key = 1;} {key = [1];}]; operator = x: [];}',
     'error: cannot compare a list with an integer'),
    ('builtins.genericClosure {startSet = [{key = [1];} {key = [1 "a"];} {key = [1 2];}]; operator = x: [];}',
     'error: cannot compare an integer with a string'),
    ('builtins.genericClosure {}',
     "error: attribute 'startSet' missing for call to 'genericClosure'"),
    ('builtins.genericClosure {startSet = [];}',
     "error: attribute 'operator' missing for call to 'genericClosure'"),
    ('builtins.genericClosure {startSet = 1;}',
     'error: value is an integer while a list was expected'),
    ('builtins.genericClosure {startSet = [{}]; operator = x: [];}',
     "error: attribute 'key' required"),
    ('builtins.genericClosure {startSet = [{key = 1;}]; operator = x: 1;}',
     'error: value is an integer while a list was expected'),
    ('builtins.genericClosure {startSet = [{key = 1;}]; operator = 1;}',
     'error: attempt to call something which is not a function but an integer'),
    ('builtins.genericClosure {startSet = [1]; operator = x: [];}',
     'error: value is an integer while a set was expected'),
    ('builtins.genericClosure 1', 'error: value is an integer while a set was expected'),
    ('builtins.length (builtins.genericClosure {startSet = [{key = 0;}]; operator = x: if x.key < 20000 then [{key = x.key + 1;}] else [];})',
     '20001'),

    # listToAttrs, zipAttrsWith
    ('builtins.listToAttrs [{name = "a"; value = 1;} {name = "b"; value = 2;}]',
     '{ a = 1; b = 2; }'),
    ('builtins.listToAttrs [{name = "a"; value = 1;} {name = "a"; value = 2;}]', '{ a = 1; }'),
    ('builtins.listToAttrs [{name = "a"; value = 1;} {name = "a";}]', '{ a = 1; }'),
    ('builtins.listToAttrs []', '{ }'),
    ('builtins.listToAttrs [{name = "a"; value = null;}]', '{ a = null; }'),
    ('(builtins.listToAttrs [{name = "a"; value = throw "lazy";} {name = "b"; value = 2;}]).b',
     '2'),
    ('builtins.attrNames (builtins.listToAttrs [{name = "a"; value = throw "lazy";}])', '[ "a" ]'),
    ('builtins.listToAttrs [{name = "a";}]',
     "error: attribute 'value' missing for call to 'listToAttrs'"),
    ('builtins.listToAttrs [{value = 1;}]',
     "error: attribute 'name' missing for call to 'listToAttrs'"),
    ('builtins.listToAttrs [1]', 'error: value is an integer while a set was expected'),
    ('builtins.listToAttrs 1', 'error: value is an integer while a list was expected'),
    ('builtins.listToAttrs [{name = 1; value = 1;}]',
     'error: value is an integer while a string was expected'),
    ('builtins.listToAttrs [{name = null; value = 1;}]',
     'error: value is null while a string was expected'),
    ('builtins.unsafeGetAttrPos "a" (builtins.listToAttrs [{name = "a"; value = 1;}])',
     '{ column = 67; file = "builtins.unsafeGetAttrPos \\"a\\" (builtins.listToAttrs [{name = \\"a\\"; value = 1;}])"; line = 1; }'),
    ('builtins.zipAttrsWith (n: v: [n v]) [{a = 1;} {a = 2; b = 3;}]',
     '{ a = [ "a" [ 1 2 ] ]; b = [ "b" [ 3 ] ]; }'),
    ('builtins.zipAttrsWith (n: v: v) []', '{ }'),
    ('builtins.zipAttrsWith (n: v: builtins.length v) [{a = throw "x";} {a = throw "y";}]',
     '{ a = 2; }'),
    ('(builtins.zipAttrsWith (n: v: throw "lazy") [{a = 1;} {b = 1;}]) ? a', 'true'),
    ('builtins.zipAttrsWith 1 [{a = 1;}]',
     'error: value is an integer while a function was expected'),
    ('builtins.zipAttrsWith (throw "x") []', 'error: x'),
    ('builtins.zipAttrsWith (n: v: v) [1]', 'error: value is an integer while a set was expected'),
    ('builtins.zipAttrsWith (n: v: v) 1', 'error: value is an integer while a list was expected'),

    # attrsets.py: attrNames, attrValues, getAttr, hasAttr, removeAttrs, intersectAttrs
    ('builtins.attrNames {y = 1; x = "foo"; "" = 2; "B" = 3; "a b" = 4;}',
     '[ "" "B" "a b" "x" "y" ]'),
    ('builtins.attrNames {}', '[ ]'),
    ('builtins.attrNames 1', 'error: value is an integer while a set was expected'),
    ('builtins.attrValues {y = 1; x = "foo";}', '[ "foo" 1 ]'),
    ('builtins.attrValues {b = 1; a = 2;}', '[ 2 1 ]'),
    ('builtins.length (builtins.attrValues {a = throw "a"; b = throw "b";})', '2'),
    ('builtins.attrValues []', 'error: value is a list while a set was expected'),
    ('builtins.getAttr "x" {x = 1;}', '1'),
    ('builtins.getAttr "x" {x = 1; y = throw "no";}', '1'),
    ('builtins.getAttr "x" {}', "error: attribute 'x' missing for call to 'getAttr'"),
    ('builtins.getAttr 1 {}', 'error: value is an integer while a string was expected'),
    ('builtins.getAttr "a" 1', 'error: value is an integer while a set was expected'),
    ('builtins.getAttr 1 1', 'error: value is an integer while a string was expected'),
    ('builtins.hasAttr "x" {x = 1;}', 'true'),
    ('builtins.hasAttr "y" {x = 1;}', 'false'),
    ('builtins.hasAttr "x" {x = throw "no";}', 'true'),
    ('builtins.hasAttr "x" 1', 'error: value is an integer while a set was expected'),
    ('builtins.hasAttr 1 1', 'error: value is an integer while a string was expected'),
    ('removeAttrs {x = 1; y = 2; z = 3;} ["a" "x" "z"]', '{ y = 2; }'),
    ('removeAttrs {a = 1;} []', '{ a = 1; }'),
    ('removeAttrs {} ["a"]', '{ }'),
    ('builtins.removeAttrs {a = 1; b = throw "lazy";} ["b"]', '{ a = 1; }'),
    ('removeAttrs {a = 1;} [1]', 'error: value is an integer while a string was expected'),
    ('removeAttrs 1 1', 'error: value is an integer while a set was expected'),
    ('removeAttrs {a = 1;} 1', 'error: value is an integer while a list was expected'),
    ('removeAttrs {a = 1;} [(throw "name")]', 'error: name'),
    ('builtins.intersectAttrs {a = 0; b = 0;} {b = 1; c = 2;}', '{ b = 1; }'),
    ('builtins.intersectAttrs {} {a = 1;}', '{ }'),
    ('builtins.intersectAttrs {a = 1; b = 2; c = 3;} {c = 4;}', '{ c = 4; }'),
    ('builtins.intersectAttrs {a = throw "no";} {a = 1;}', '{ a = 1; }'),
    ('builtins.intersectAttrs 1 1', 'error: value is an integer while a set was expected'),
    ('builtins.intersectAttrs {} 1', 'error: value is an integer while a set was expected'),

    # mapAttrs, catAttrs, unsafeGetAttrPos
    ('builtins.mapAttrs (name: value: value * 10) {a = 1; b = 2;}', '{ a = 10; b = 20; }'),
    ('builtins.mapAttrs (n: v: n) {a = 1;}', '{ a = "a"; }'),
    ('builtins.mapAttrs (throw "x") {}', '{ }'),
    ('(builtins.mapAttrs (n: v: throw "lazy") {a = 1; b = 2;}) ? a', 'true'),
    ('builtins.attrNames (builtins.mapAttrs (n: v: throw "lazy") {a = 1; b = 2;})', '[ "a" "b" ]'),
    ('builtins.mapAttrs 1 {a = 1;}',
     'error: attempt to call something which is not a function but an integer'),
    ('builtins.mapAttrs (n: v: v) 1', 'error: value is an integer while a set was expected'),
    ('builtins.unsafeGetAttrPos "a" (builtins.mapAttrs (n: v: v) {a = 1;})', 'null'),
    ('builtins.catAttrs "a" [{a = 1;} {b = 0;} {a = 2;}]', '[ 1 2 ]'),
    ('builtins.catAttrs "a" []', '[ ]'),
    ('builtins.length (builtins.catAttrs "a" [{a = throw "lazy";}])', '1'),
    ('builtins.catAttrs "a" [{a = 1;} {} 1]',
     'error: value is an integer while a set was expected'),
    ('builtins.catAttrs 1 1', 'error: value is an integer while a string was expected'),
    ('builtins.catAttrs "a" 1', 'error: value is an integer while a list was expected'),
    ('builtins.unsafeGetAttrPos "a" {a = 1;}',
     '{ column = 32; file = "builtins.unsafeGetAttrPos \\"a\\" {a = 1;}"; line = 1; }'),
    ('builtins.unsafeGetAttrPos "a" { b = 2;\n  a = 1; }',
     '{ column = 3; file = "builtins.unsafeGetAttrPos \\"a\\" { b = 2;\\n  a = 1; }"; line = 2; }'),
    ('builtins.unsafeGetAttrPos "b" {a = 1;}', 'null'),
    ('builtins.unsafeGetAttrPos 1 {a = 1;}',
     'error: value is an integer while a string was expected'),
    ('builtins.unsafeGetAttrPos "a" 1', 'error: value is an integer while a set was expected'),
    ('builtins.unsafeGetAttrPos "a" ({a = 1;} // {b = 2;})',
     '{ column = 33; file = "builtins.unsafeGetAttrPos \\"a\\" ({a = 1;} // {b = 2;})"; line = 1; }'),
    ('builtins.unsafeGetAttrPos "a" (removeAttrs {a = 1; b = 2;} ["b"])',
     '{ column = 45; file = "builtins.unsafeGetAttrPos \\"a\\" (removeAttrs {a = 1; b = 2;} [\\"b\\"])"; line = 1; }'),
    ('builtins.unsafeGetAttrPos "a" (builtins.intersectAttrs {a = 1;} {a = 2;})',
     '{ column = 66; file = "builtins.unsafeGetAttrPos \\"a\\" (builtins.intersectAttrs {a = 1;} {a = 2;})"; line = 1; }'),
]


@pytest.fixture(scope="module")
def evaluator():
    return Evaluator()


def dtx_eval(ev: Evaluator, expr: str) -> str:
    """Evaluate `expr` as `dtx-instantiate --eval --strict -E` would: the printed value, or the
    first line of the error."""
    def run():
        v = ev.eval_string(expr)
        deep_force(v)
        return print_value(v, strict=True)
    try:
        return run_deep(run)
    except EvalError as e:
        return f"error: {e.message}"


def _ids():
    seen: dict[str, int] = {}
    out = []
    for expr, _ in CASES:
        key = expr.split("\n")[0][:60]
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append(key if n == 0 else f"{key}#{n}")
    return out


@pytest.mark.parametrize("expr,expected", CASES, ids=_ids())
def test_case(evaluator, expr, expected):
    assert dtx_eval(evaluator, expr) == expected


# -- the oracle ------------------------------------------------------------------------------

def _nix_one(expr: str) -> str:
    p = subprocess.run([NIX, "--eval", "--strict", "-E", expr], capture_output=True, text=True)
    if p.returncode == 0:
        return p.stdout.strip()
    return p.stderr.splitlines()[0] if p.stderr else f"exit status {p.returncode}"


def _nix_repl_errors(exprs: list[str]) -> dict[str, str]:
    """Evaluate one-line expressions in a single `nix repl` (which carries on after an error)
    and return the first error line each gives, or its output if it gives none."""
    repl = shutil.which("nix")
    if repl is None or not exprs:
        return {}
    script = "".join(f"builtins.deepSeq ({e}) null\n" for e in exprs)
    try:
        p = subprocess.run([repl, "repl"], input=script, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    chunks = p.stdout.split("nix-repl> ")[1:]
    if len(chunks) < len(exprs):
        return {}
    out = {}
    for expr, chunk in zip(exprs, chunks):
        lines = chunk.splitlines()[1:]  # the first line is the echoed input
        errors = [line for line in lines if line.startswith("error:")]
        out[expr] = errors[0] if errors else "\n".join(lines).strip()
    return out


@pytest.fixture(scope="module")
def oracle() -> dict[str, str]:
    """Run every case through real Nix: those recorded as succeeding in one `nix-instantiate`
    (each prints one line), those recorded as failing in one `nix repl`; a case whose answer
    differs from the recording is run on its own with `nix-instantiate`, which is what counts."""
    expected = dict(CASES)
    ok = [e for e, r in CASES if not r.startswith("error:")]
    failing = [e for e, r in CASES if r.startswith("error:")]
    results: dict[str, str] = {}
    p = subprocess.run([NIX, "--eval", "--strict", "-E", *ok], capture_output=True, text=True)
    lines = p.stdout.splitlines()
    if p.returncode == 0 and len(lines) == len(ok):
        results.update(zip(ok, lines))
    else:
        failing = ok + failing
    one_line = [e for e in failing if "\n" not in e]
    results.update(_nix_repl_errors(one_line))
    again = [e for e in failing if results.get(e) != expected[e]]
    with ThreadPoolExecutor(8) as pool:
        results.update(zip(again, pool.map(_nix_one, again)))
    return results


@pytest.mark.skipif(NIX is None, reason="nix-instantiate is not on PATH")
@pytest.mark.parametrize("expr,expected", CASES, ids=_ids())
def test_oracle(oracle, expr, expected):
    assert oracle[expr] == expected


# -- what the expressions above cannot show ---------------------------------------------------

# The comparator calls `builtins.sort` makes, as Nix 2.8 (libstdc++'s std::stable_sort) makes them.
SORT_TRACE_EXPR = ('builtins.sort (a: b: builtins.trace "${toString a} ${toString b}" (a < b)) '
                   '[5 3 9 1 7 2 8 6 4 0 11 15 13 12 14 10 3]')
SORT_TRACE = (
    "3 5|9 3|9 5|1 3|7 1|7 9|7 5|2 1|2 9|2 7|2 5|2 3|2 1|8 1|8 9|8 7|4 6|4 1|4 2|4 3|4 5|6 5|"
    "6 7|11 0|11 0|15 0|15 11|13 0|13 15|13 11|12 0|12 15|12 13|12 11|14 0|14 15|14 13|10 0|"
    "10 15|10 14|10 13|10 12|10 11|10 0|3 0|3 10|15 9|14 9|13 9|12 9|11 9|10 9|3 9|3 8|3 7|3 6|"
    "3 5|3 4|3 3|0 3|0 2|0 1").split("|")


def test_sort_calls_the_comparator_as_nix_does():
    ev = Evaluator()
    ev.trace_out = io.StringIO()
    assert dtx_eval(ev, SORT_TRACE_EXPR) == "[ 0 1 2 3 3 4 5 6 7 8 9 10 11 12 13 14 15 ]"
    assert ev.trace_out.getvalue().splitlines() == [f"trace: {t}" for t in SORT_TRACE]


@pytest.mark.skipif(NIX is None, reason="nix-instantiate is not on PATH")
def test_sort_trace_oracle():
    p = subprocess.run([NIX, "--eval", "--strict", "-E", SORT_TRACE_EXPR], capture_output=True,
                       text=True)
    assert p.stderr.splitlines() == [f"trace: {t}" for t in SORT_TRACE]


def test_foldl_strict_is_a_loop(evaluator):
    # A million steps on the caller's own stack (no `run_deep`): no recursion per element.
    expr = "builtins.foldl' (acc: x: x) 0 (builtins.genList (x: x) 1000000)"
    assert evaluator.eval_string(expr) == 999999


def test_map_calls_nothing_until_an_element_is_forced(evaluator):
    calls = []
    ev = evaluator
    f = ev.eval_string("x: x + 1")
    mapped = ev.eval_string("builtins.map")
    from dtx.runtime.apply import call, call2
    from dtx.runtime.values import PrimOp, force

    def spy(x):
        calls.append(x)
        return call(f, x)
    result = call2(mapped, PrimOp("spy", 1, spy), [1, 2, 3])
    assert calls == []
    assert force(result[1]) == 3
    assert calls == [2]


def test_attr_values_passes_thunks_on(evaluator):
    from dtx.runtime.values import Thunk
    s = evaluator.eval_string("{ a = 1 + 1; b = throw \"no\"; }")
    values = evaluator.eval_string("builtins.attrValues")
    from dtx.runtime.apply import call
    out = call(values, s)
    assert out[0] is s.d["a"] and out[1] is s.d["b"]
    assert type(out[1]) is Thunk and not out[1].forced()


def test_strings_with_context_are_not_names():
    from dtx.runtime.builtins.lists import want_plain_string
    s = CStr("/nix/store/abc-x", {"/nix/store/abc-x"})
    with pytest.raises(EvalError) as e:
        want_plain_string(s)
    assert e.value.message == ("the string '/nix/store/abc-x' is not allowed to refer to a store "
                               "path (such as '/nix/store/abc-x')")


def test_function_args_positions(evaluator):
    v = evaluator.eval_string("builtins.functionArgs ({ a, b ? 1 }: a)")
    assert type(v) is Attrs and v.pos is not None and v.pos["b"].line_col() == (1, 29)
