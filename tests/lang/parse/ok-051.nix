with {}; a + !b // c
