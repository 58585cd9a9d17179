with {}; f x y
