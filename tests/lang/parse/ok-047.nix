with {}; (f x) y
