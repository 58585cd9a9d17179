with {}; a/b/
