with {}; (a <= b) c
