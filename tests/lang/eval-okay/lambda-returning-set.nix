let f = { a, b }: { sum = a + b; prod = a * b; }; in (f { a = 3; b = 4; })
