with {}; let f = { a, b ? 2, ... }@args: a + b; in f { a = 1; }
