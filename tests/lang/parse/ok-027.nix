with {}; a ? b.c
