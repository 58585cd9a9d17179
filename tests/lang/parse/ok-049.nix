with {}; (f a) or
