with {}; a.or
