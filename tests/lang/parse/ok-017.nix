with {}; x.5
