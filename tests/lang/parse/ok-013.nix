with {}; ./a${x}b/c.d
