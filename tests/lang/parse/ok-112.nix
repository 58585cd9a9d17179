with {}; a || b && c
