with {}; ~/${x}
