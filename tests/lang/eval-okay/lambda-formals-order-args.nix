let f = { b, a }: a - b; in f { a = 10; b = 3; }
