with {}; a + b - c
