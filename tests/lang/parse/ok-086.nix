with {}; (a - b) c
