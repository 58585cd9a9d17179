with {}; a <= b
