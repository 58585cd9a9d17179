[ 1 1.5 "s" true false null [ ] { } (x: x) ({ a, b ? 1 }: a) builtins.add (builtins.add 1) ./lib ]
