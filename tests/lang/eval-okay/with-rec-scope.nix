let s = { a = 5; }; in with s; rec { b = a + 1; c = b + a; }
