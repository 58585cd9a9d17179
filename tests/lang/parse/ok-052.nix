with {}; !a // b
