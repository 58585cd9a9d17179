with {}; a-b - c
