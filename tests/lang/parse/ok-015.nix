with {}; a /b
