with { a = 1; b = 2; }; with { b = 20; c = 30; }; [ a b c ]
