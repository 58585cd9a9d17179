let x = 1; f = { x ? x + 1 }: x; in f { x = 5; }
