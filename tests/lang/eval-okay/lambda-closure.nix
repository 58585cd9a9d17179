let mk = n: { get = n; add = m: mk (n + m); }; in ((mk 1).add 2).add 3
