with {}; f a or
