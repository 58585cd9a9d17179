with {}; - 1
