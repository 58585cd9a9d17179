let f = { a ? b, b ? 2 }: a; in [ (f {}) (f { b = 3; }) ]
