with {}; a == b
