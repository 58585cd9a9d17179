with {}; { a = 1; inherit a; }
