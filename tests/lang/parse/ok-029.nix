with {}; a -> b -> c
