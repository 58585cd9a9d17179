with {}; a/ b
