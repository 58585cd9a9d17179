with {}; (a
