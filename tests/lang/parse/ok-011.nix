with {}; ./a/${x}
