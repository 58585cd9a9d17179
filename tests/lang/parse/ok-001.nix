with {}; let a = 1; in { inherit a; x = a - 1 + b.c or 3; y = -a; z = !true && a < 2; s = "x${a}y"; f = {p ? 1, ...}@q: [ p ]; }
