with {}; [ (f x) y.z or 1 ]
