with {}; x: y: x
