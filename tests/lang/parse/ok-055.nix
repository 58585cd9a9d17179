with {}; !a ? b
