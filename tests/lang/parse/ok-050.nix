with {}; a + !b + c
