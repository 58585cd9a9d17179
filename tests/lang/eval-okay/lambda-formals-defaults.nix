let f = { a ? 1, b ? a + 10, c ? b * 2 }: [ a b c ]; in [ (f {}) (f { a = 2; }) (f { c = 0; }) (f { b = 5; a = 100; }) ]
