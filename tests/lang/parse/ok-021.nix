with {}; a or b
