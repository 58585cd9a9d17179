with {}; assert x -> y; !z
