with {}; /abs/${x}
