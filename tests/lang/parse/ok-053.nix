with {}; - !a + b
