with {}; { a = [ 1 2.5 "s" ./p <q> http://u.org/x?y=1 ]; b = x: y: x + y; c = if a then b else c; }
