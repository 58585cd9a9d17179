with {}; a // b // c
