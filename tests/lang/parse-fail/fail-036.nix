x: x;
