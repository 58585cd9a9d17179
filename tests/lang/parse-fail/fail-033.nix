with {}; if a then b
