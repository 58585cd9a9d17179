with {}; a b )
